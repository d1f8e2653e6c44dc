package org.usp4j.nccl;

/** NCCL's built-in reduction operators ({@code ncclRedOp_t}). */
public enum NcclRedOp {
    SUM(0), PROD(1), MAX(2), MIN(3), AVG(4);

    private final int code;

    NcclRedOp(int code) {
        this.code = code;
    }

    public int code() {
        return code;
    }
}
