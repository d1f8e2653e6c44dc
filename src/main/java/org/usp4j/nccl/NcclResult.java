package org.usp4j.nccl;

import java.util.Optional;

/** NCCL's {@code ncclResult_t} codes, with their C names. */
public enum NcclResult {
    SUCCESS(0, "ncclSuccess"),
    UNHANDLED_CUDA_ERROR(1, "ncclUnhandledCudaError"),
    SYSTEM_ERROR(2, "ncclSystemError"),
    INTERNAL_ERROR(3, "ncclInternalError"),
    INVALID_ARGUMENT(4, "ncclInvalidArgument"),
    INVALID_USAGE(5, "ncclInvalidUsage"),
    /** Since 2.13. */
    REMOTE_ERROR(6, "ncclRemoteError"),
    /** Since 2.14: a non-blocking communicator is still working; poll its async error. */
    IN_PROGRESS(7, "ncclInProgress"),
    /** Since 2.30 (before, 8 was the count of results). */
    TIMEOUT(8, "ncclTimeout");

    private final int code;
    private final String cName;

    NcclResult(int code, String cName) {
        this.code = code;
        this.cName = cName;
    }

    public int code() {
        return code;
    }

    /** The C enumerator name, e.g. "ncclInvalidArgument". */
    public String cName() {
        return cName;
    }

    public static Optional<NcclResult> of(int code) {
        for (NcclResult r : values()) {
            if (r.code == code) {
                return Optional.of(r);
            }
        }
        return Optional.empty();
    }
}
