package org.usp4j.launch;

/** Which launcher's environment variables a process's rank was read from. */
public enum LaunchSource {
    /** {@code usp4j launch}: USP4J_RANK, USP4J_WORLD_SIZE, ... */
    USP4J("usp4j launch"),
    /** torchrun (torch.distributed.run): RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT. */
    TORCHRUN("torchrun"),
    /** Open MPI's mpirun: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE. */
    OPEN_MPI("mpirun (Open MPI)"),
    /** Slurm's srun: SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID, SLURM_STEP_TASKS_PER_NODE, ... */
    SLURM("srun (Slurm)"),
    /** No launcher: one process, a world of one. */
    NONE("no launcher");

    private final String description;

    LaunchSource(String description) {
        this.description = description;
    }

    /** How a person would name it: "torchrun", "srun (Slurm)". */
    public String description() {
        return description;
    }
}
