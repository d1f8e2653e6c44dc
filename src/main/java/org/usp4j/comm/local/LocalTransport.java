package org.usp4j.comm.local;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import org.usp4j.tensor.Tensor;

/**
 * How one rank of an in-process world moves bytes: plain host memory copies ({@link #HOST}), or
 * device-to-device copies ordered by the rank's CUDA stream (the GPU backend's transport). The world's
 * rendezvous logic (slots, barriers, message matching) is the same for both; only these steps differ.
 *
 * <p>Tokens are opaque markers of "work enqueued so far" (CUDA events on a GPU, nothing on the host).
 */
public interface LocalTransport {

    /** Implemented by backends whose in-process ranks need a transport other than {@link #HOST}. */
    interface Source {
        LocalTransport localTransport();
    }

    /** The transport for a backend: its own if it has one, else host copies. */
    static LocalTransport of(Object backend) {
        return backend instanceof Source s ? s.localTransport() : HOST;
    }

    /** Refuses a buffer this transport cannot move, with an IllegalArgumentException naming it. */
    void requireBuffer(String operation, String name, Tensor t);

    /** Before a collective: the rank's earlier work on its buffers must be complete or ordered. */
    void beforeCollective();

    /** Copies {@code bytes} from {@code src} at {@code srcOffset} to {@code dst} at {@code dstOffset}. */
    void copy(Tensor src, long srcOffset, Tensor dst, long dstOffset, long bytes);

    /**
     * Adds the float32 elements of {@code bytes} from {@code src} at {@code srcOffset} to those of
     * {@code dst} at {@code dstOffset} (the reduction of a reduce-scatter).
     */
    void accumulate(Tensor src, long srcOffset, Tensor dst, long dstOffset, long bytes);

    /** After the rank's collective copies: they must be complete before peers reuse their buffers. */
    void afterCollective();

    /** A token for "the buffers this rank sends or receives into are ready", taken when sendRecv starts. */
    Object ready();

    /**
     * Receives a peer's message into {@code into} (pairwise), after both the sender's and this rank's
     * ready tokens; runs on a copy thread. Returns the token of the finished copy.
     */
    Object receive(List<Tensor> from, Object senderReady, List<Tensor> into, Object receiverReady);

    /** Orders this rank's later work after a finished copy (its receive landed, or its send was read). */
    void awaitCopy(Object copied);

    /** Releases a token this rank created once nobody will wait on it any more. */
    void release(Object token);

    /** Host memory copies; every token is null. */
    LocalTransport HOST = new LocalTransport() {
        @Override
        public void requireBuffer(String operation, String name, Tensor t) {
            if (!t.isHost()) {
                throw new IllegalArgumentException(operation + ": " + name + " " + t.describe()
                        + " is device memory; the in-process communicator of this backend moves host tensors");
            }
            if (!t.isContiguous()) {
                throw new IllegalArgumentException(operation + ": " + name + " " + t.describe() + " must be contiguous");
            }
        }

        @Override
        public void beforeCollective() {
        }

        @Override
        public void copy(Tensor src, long srcOffset, Tensor dst, long dstOffset, long bytes) {
            MemorySegment.copy(src.contiguousSegment(), srcOffset, dst.contiguousSegment(), dstOffset, bytes);
        }

        @Override
        public void accumulate(Tensor src, long srcOffset, Tensor dst, long dstOffset, long bytes) {
            MemorySegment from = src.contiguousSegment();
            MemorySegment to = dst.contiguousSegment();
            for (long i = 0; i < bytes; i += Float.BYTES) {
                float sum = to.get(ValueLayout.JAVA_FLOAT_UNALIGNED, dstOffset + i)
                        + from.get(ValueLayout.JAVA_FLOAT_UNALIGNED, srcOffset + i);
                to.set(ValueLayout.JAVA_FLOAT_UNALIGNED, dstOffset + i, sum);
            }
        }

        @Override
        public void afterCollective() {
        }

        @Override
        public Object ready() {
            return null;
        }

        @Override
        public Object receive(List<Tensor> from, Object senderReady, List<Tensor> into, Object receiverReady) {
            for (int i = 0; i < from.size(); i++) {
                MemorySegment.copy(from.get(i).contiguousSegment(), 0, into.get(i).contiguousSegment(), 0,
                        from.get(i).byteSize());
            }
            return null;
        }

        @Override
        public void awaitCopy(Object copied) {
        }

        @Override
        public void release(Object token) {
        }
    };
}
