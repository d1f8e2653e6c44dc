package org.usp4j.api;

import java.lang.foreign.MemorySegment;
import java.util.Objects;

/**
 * The caller's native handles for one process rank: an initialised NCCL communicator
 * ({@code ncclComm_t}), the CUDA stream ({@code cudaStream_t}) the rank's work is ordered on, and the
 * CUDA device of that communicator. usp4j borrows them: it never destroys or aborts the communicator
 * and never destroys the stream (it destroys only the sub-communicators it splits off), and the caller
 * keeps them valid until the {@link ProcessRank} made from them is closed. After a
 * {@link CommunicationException} the caller's communicator is in an unknown state; its owner decides
 * whether to abort it.
 *
 * <p>A plain value, immutable and thread-safe. Addresses are raw pointers as frameworks pass them
 * (e.g. PyTorch's {@code torch.cuda.current_stream().cuda_stream}, JavaCPP's {@code Pointer.address()}).
 *
 * @param communicator the {@code ncclComm_t}; not 0
 * @param stream       the {@code cudaStream_t}; 0 is the legacy default stream
 * @param device       the CUDA device ordinal the communicator was created on; at least 0
 */
public record NcclHandles(long communicator, long stream, int device) {

    /**
     * Checks the handles.
     *
     * @throws IllegalArgumentException when the communicator is NULL or the device is negative
     */
    public NcclHandles {
        if (communicator == 0) {
            throw new IllegalArgumentException("the NCCL communicator handle is NULL (0); pass an initialised ncclComm_t");
        }
        if (device < 0) {
            throw new IllegalArgumentException("CUDA device must be >= 0, got " + device);
        }
    }

    /**
     * The handles from foreign-memory addresses.
     *
     * @param communicator the {@code ncclComm_t} as a (zero-length) segment
     * @param stream       the {@code cudaStream_t}; {@link MemorySegment#NULL} is the legacy default stream
     * @param device       the CUDA device ordinal
     * @return the handles
     * @throws NullPointerException     when a segment is null
     * @throws IllegalArgumentException when the communicator is NULL or the device is negative
     */
    public static NcclHandles of(MemorySegment communicator, MemorySegment stream, int device) {
        Objects.requireNonNull(communicator, "communicator");
        Objects.requireNonNull(stream, "stream");
        return new NcclHandles(communicator.address(), stream.address(), device);
    }

    /**
     * The handles in hexadecimal.
     *
     * @return the handles as text
     */
    @Override
    public String toString() {
        return "NcclHandles[communicator 0x" + Long.toHexString(communicator) + ", stream 0x"
                + Long.toHexString(stream) + ", device " + device + "]";
    }
}
