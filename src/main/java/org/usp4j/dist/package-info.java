/**
 * Multi-process jobs: where this process stands ({@link org.usp4j.dist.LaunchEnvironment}, read from the
 * variables of {@code usp4j launch}, torchrun, Open MPI's mpirun or Slurm's srun) and how the ranks meet
 * ({@link org.usp4j.dist.Rendezvous}: rank 0 hosts the {@link org.usp4j.dist.store store}, every rank joins,
 * rank 0's values such as the NCCL unique id are broadcast, barriers line the ranks up). Every wait is
 * bounded; a missing rank is named in the error. The launcher itself is in {@link org.usp4j.dist.launch}.
 */
package org.usp4j.dist;
