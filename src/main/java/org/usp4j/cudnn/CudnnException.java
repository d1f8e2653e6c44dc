package org.usp4j.cudnn;

import java.util.Optional;

/**
 * A cuDNN call failed. Carries the {@code cudnnStatus_t} code, cuDNN's own name for it
 * ({@code cudnnGetErrorString}, e.g. "CUDNN_STATUS_NOT_INITIALIZED") and cuDNN's last error
 * message ({@code cudnnGetLastErrorString}), which names the failing internal check.
 */
public final class CudnnException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final String function;
    private final int code;
    private final String statusName;
    private final String lastError;

    public CudnnException(String function, int code, String statusName, String lastError) {
        super(function + " failed: " + statusName + " (" + code + ")"
                + (lastError == null || lastError.isBlank() ? "" : ": " + lastError));
        this.function = function;
        this.code = code;
        this.statusName = statusName;
        this.lastError = lastError;
    }

    public String function() {
        return function;
    }

    public int code() {
        return code;
    }

    /** cuDNN's name for the code, e.g. "CUDNN_STATUS_BAD_PARAM_ATTRIBUTE_TYPE". */
    public String statusName() {
        return statusName;
    }

    /** The code as a {@link CudnnStatus}, when it is one usp4j knows. */
    public Optional<CudnnStatus> status() {
        for (CudnnStatus s : CudnnStatus.values()) {
            if (s.code() == code) {
                return Optional.of(s);
            }
        }
        return Optional.empty();
    }

    /** cuDNN's message for the failure; may be empty. */
    public String lastError() {
        return lastError;
    }
}
