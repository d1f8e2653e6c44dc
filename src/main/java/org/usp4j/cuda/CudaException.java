package org.usp4j.cuda;

/**
 * A CUDA runtime call failed. Carries the {@code cudaError_t} code, the runtime's own name for it
 * ({@code cudaGetErrorName}, e.g. "cudaErrorInsufficientDriver") and its description
 * ({@code cudaGetErrorString}).
 */
public final class CudaException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String function;
    private final int code;
    private final String errorName;
    private final String description;

    public CudaException(String function, int code, String errorName, String description) {
        super(function + " failed: " + errorName + " (" + code + "): " + description);
        this.function = function;
        this.code = code;
        this.errorName = errorName;
        this.description = description;
    }

    /** The runtime function that failed. */
    public String function() {
        return function;
    }

    /** The {@code cudaError_t} value. */
    public int code() {
        return code;
    }

    /** The runtime's name for the code, e.g. "cudaErrorMemoryAllocation". */
    public String errorName() {
        return errorName;
    }

    /** The runtime's description of the code, e.g. "out of memory". */
    public String description() {
        return description;
    }
}
