package org.usp4j.jmh;

import java.util.List;
import java.util.concurrent.atomic.AtomicLong;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficCounter;
import org.usp4j.comm.Transfer;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.Mask;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.Tensor;

/**
 * A rank whose device does nothing: device tensors at made-up addresses that nothing ever dereferences,
 * a kernel and element-wise operations that return at once, and communicators whose transfers complete
 * immediately. What remains of a USP call is the orchestration's own host work: shapes, views,
 * allocation bookkeeping, ring scheduling and merges as calls.
 */
final class NoOpRank {

    private NoOpRank() {
    }

    static final AttentionKernel KERNEL = new AttentionKernel() {
        @Override
        public void forward(Tensor q, Tensor k, Tensor v, Mask mask, float scale, Tensor out, Tensor lse) {
        }

        @Override
        public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor lse, Mask mask, float scale,
                             Tensor dq, Tensor dk, Tensor dv, boolean accumulate) {
        }
    };

    /** Bump "allocation" of 256-byte aligned fake device addresses, as a stream-ordered allocator hands out. */
    static final class Allocator implements TensorAllocator {
        private static final AtomicLong NEXT = new AtomicLong(1L << 40);

        @Override
        public Tensor allocate(DType dtype, long... shape) {
            long bytes = Math.max(256, Tensor.numel(shape) * dtype.byteSize());
            long address = NEXT.getAndAdd((bytes + 255) & ~255L);
            return Tensor.device(new DevicePointer(address, bytes, 0), dtype, shape);
        }

        @Override
        public void close() {
        }
    }

    static final class NoOpBackend implements Backend {
        @Override
        public String name() {
            return "no-op";
        }

        @Override
        public AttentionKernel kernel() {
            return KERNEL;
        }

        @Override
        public TensorAllocator newAllocator() {
            return new Allocator();
        }

        @Override
        public void copy(Tensor src, Tensor dst) {
        }

        @Override
        public void fill(Tensor dst, float value) {
        }

        @Override
        public void add(Tensor dst, Tensor src) {
        }

        @Override
        public void mergeAttention(Tensor out, Tensor lse, Tensor blockOut, Tensor blockLse) {
        }

        @Override
        public void synchronize() {
        }

        @Override
        public void close() {
        }
    }

    /** Rank {@code rank} of a group of {@code size} whose exchanges move nothing. */
    static final class NoOpCommunicator implements Communicator {
        private static final Transfer DONE = new Transfer() {
            @Override
            public void await() {
            }

            @Override
            public boolean cancel() {
                return true;
            }
        };
        private final int rank;
        private final int size;
        private final TrafficCounter traffic = new TrafficCounter();

        NoOpCommunicator(int rank, int size) {
            this.rank = rank;
            this.size = size;
        }

        @Override
        public int rank() {
            return rank;
        }

        @Override
        public int size() {
            return size;
        }

        @Override
        public void allToAll(Tensor send, Tensor recv) {
        }

        @Override
        public void allGather(Tensor send, Tensor recv) {
        }

        @Override
        public void reduceScatter(Tensor send, Tensor recv) {
        }

        @Override
        public Transfer sendRecv(List<Tensor> sends, int dst, List<Tensor> recvs, int src) {
            return DONE;
        }

        @Override
        public void barrier() {
        }

        @Override
        public Communicator split(int color, int key) {
            throw new UnsupportedOperationException("build the groups directly");
        }

        @Override
        public TrafficCounter traffic() {
            return traffic;
        }

        @Override
        public void close() {
        }
    }
}
