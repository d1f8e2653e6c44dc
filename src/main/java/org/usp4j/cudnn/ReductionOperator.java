package org.usp4j.cudnn;

/**
 * Reduction operators ({@code cudnnReduceTensorOp_t}); the reduced axes are those where the output has size 1.
 * Values are those of {@code cudnnReduceTensorOp_t} in usp4j's {@code headers/cudnn/cudnn_api.h}.
 */
public enum ReductionOperator {
    ADD(0),
    MUL(1),
    MIN(2),
    MAX(3),
    AMAX(4),
    AVG(5),
    NORM1(6),
    NORM2(7),
    MUL_NO_ZEROS(8);

    private final int code;

    ReductionOperator(int code) {
        this.code = code;
    }

    /** The numeric value passed to cuDNN. */
    public int code() {
        return code;
    }

    /** The C enumerator name, e.g. {@code CUDNN_REDUCE_TENSOR_ADD}. */
    public String cName() {
        return "CUDNN_REDUCE_TENSOR_" + name();
    }
}
