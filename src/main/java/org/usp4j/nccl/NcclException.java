package org.usp4j.nccl;

/**
 * An NCCL call failed. Carries the {@code ncclResult_t} code, its C name ("ncclInvalidArgument"),
 * NCCL's description of it ({@code ncclGetErrorString}) and NCCL's last error message
 * ({@code ncclGetLastError}), which usually says what went wrong.
 */
public final class NcclException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String function;
    private final int code;
    private final String resultName;
    private final String description;
    private final String lastError;

    public NcclException(String function, int code, String description, String lastError) {
        super(message(function, code, description, lastError));
        this.function = function;
        this.code = code;
        this.resultName = nameOf(code);
        this.description = description;
        this.lastError = lastError;
    }

    public String function() {
        return function;
    }

    public int code() {
        return code;
    }

    /** The C name of the code, e.g. "ncclUnhandledCudaError", or "ncclResult(<code>)" for codes unknown here. */
    public String resultName() {
        return resultName;
    }

    /** {@code ncclGetErrorString(code)}. */
    public String description() {
        return description;
    }

    /** {@code ncclGetLastError} at the time of failure; empty when NCCL recorded none. */
    public String lastError() {
        return lastError;
    }

    static String nameOf(int code) {
        return NcclResult.of(code).map(NcclResult::cName).orElse("ncclResult(" + code + ")");
    }

    private static String message(String function, int code, String description, String lastError) {
        String text = function + " failed: " + nameOf(code) + " (" + code + "): " + description;
        return lastError == null || lastError.isBlank() ? text : text + "; last error: " + lastError;
    }
}
