/**
 * Multi-process jobs: where this process stands ({@link org.usp4j.launch.LaunchEnvironment}, read from the
 * variables of {@code usp4j launch}, torchrun, Open MPI's mpirun or Slurm's srun), how the ranks meet
 * ({@link org.usp4j.launch.Rendezvous}: rank 0 hosts the {@link org.usp4j.launch.store store}, every rank
 * joins, rank 0's values such as the NCCL unique id are broadcast, barriers line the ranks up), the
 * {@link org.usp4j.launch.LaunchedRank} the engine runs on, and {@code usp4j launch} itself: a
 * {@link org.usp4j.launch.LaunchPlan} run by a {@link org.usp4j.launch.ProcessLauncher}, which starts one
 * process per local rank, prefixes their output with {@code [rank k]}, stops the others when one fails and
 * reports a {@link org.usp4j.launch.LaunchOutcome}. Every wait is bounded; a missing rank is named.
 * Nothing here knows NCCL: the NCCL communicator in {@code comm.nccl} uses the store and rendezvous.
 */
package org.usp4j.launch;
