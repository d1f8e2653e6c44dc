package org.usp4j.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicLong;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.LinearAttentionKernel;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * One in-process rank's device: host memory in shared arenas (ranks are threads and exchange buffers),
 * the attention kernel it is given, and element-wise operations that walk strided tensors row by row.
 * Work runs synchronously on the calling thread, so {@link #synchronize} has nothing to wait for.
 *
 * <p>{@link #liveBytes} counts the bytes held by this backend's open allocators: leak tests watch it;
 * {@link #peakBytes} keeps its highest value.
 */
public final class CpuBackend implements Backend {

    private static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final AttentionKernel kernel;
    private final LinearAttentionKernel linearKernel;
    private final AtomicLong liveBytes = new AtomicLong();
    private final AtomicLong peakBytes = new AtomicLong();
    private volatile boolean closed;

    /** A backend with this softmax kernel and the CPU linear attention kernel on the shared pool. */
    public CpuBackend(AttentionKernel kernel) {
        this(kernel, new CpuLinearAttentionKernel());
    }

    public CpuBackend(AttentionKernel kernel, LinearAttentionKernel linearKernel) {
        this.kernel = Objects.requireNonNull(kernel, "kernel");
        this.linearKernel = Objects.requireNonNull(linearKernel, "linearKernel");
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public AttentionKernel kernel() {
        requireOpen();
        return kernel;
    }

    @Override
    public LinearAttentionKernel linearKernel() {
        requireOpen();
        return linearKernel;
    }

    @Override
    public TensorAllocator newAllocator() {
        requireOpen();
        return new CpuTensorAllocator(liveBytes, peakBytes);
    }

    /** Bytes currently held by allocators of this backend that are not yet closed. */
    public long liveBytes() {
        return liveBytes.get();
    }

    /** The most bytes {@link #liveBytes} ever reached: what a memory estimate must cover. */
    public long peakBytes() {
        return peakBytes.get();
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        requireOpen();
        requireSameShape("copy", src, dst);
        requireHost("copy", "src", src);
        requireHost("copy", "dst", dst);
        DType st = src.dtype();
        DType dt = dst.dtype();
        MemorySegment s = src.segment();
        MemorySegment d = dst.segment();
        if (st == dt && src.isContiguous() && dst.isContiguous()) {
            MemorySegment.copy(s, src.offset() * st.byteSize(), d, dst.offset() * dt.byteSize(), src.byteSize());
            return;
        }
        StridedRows rows = StridedRows.of(src, dst);
        long n = rows.rowLength();
        long ss = rows.rowStride(0);
        long ds = rows.rowStride(1);
        if (st == dt && ss == 1 && ds == 1) {
            long bytes = n * st.byteSize();
            rows.forEach(off -> MemorySegment.copy(s, off[0] * st.byteSize(), d, off[1] * dt.byteSize(), bytes));
            return;
        }
        int sb = st.byteSize();
        int db = dt.byteSize();
        rows.forEach(off -> {
            long si = off[0] * sb;
            long di = off[1] * db;
            for (long i = 0; i < n; i++) {
                dt.write(d, di, st.read(s, si));
                si += ss * sb;
                di += ds * db;
            }
        });
    }

    @Override
    public void fill(Tensor dst, float value) {
        requireOpen();
        requireHost("fill", "dst", dst);
        DType dt = dst.dtype();
        MemorySegment d = dst.segment();
        if (Float.floatToRawIntBits(value) == 0 && dst.isContiguous()) {
            // +0.0 is all zero bits in F32, BF16 and F16.
            d.asSlice(dst.offset() * dt.byteSize(), dst.byteSize()).fill((byte) 0);
            return;
        }
        StridedRows rows = StridedRows.of(dst);
        long n = rows.rowLength();
        long ds = rows.rowStride(0);
        int db = dt.byteSize();
        rows.forEach(off -> {
            long di = off[0] * db;
            for (long i = 0; i < n; i++) {
                dt.write(d, di, value);
                di += ds * db;
            }
        });
    }

    @Override
    public void add(Tensor dst, Tensor src) {
        requireOpen();
        requireSameShape("add", src, dst);
        requireHost("add", "src", src);
        requireHost("add", "dst", dst);
        DType st = src.dtype();
        DType dt = dst.dtype();
        MemorySegment s = src.segment();
        MemorySegment d = dst.segment();
        StridedRows rows = StridedRows.of(dst, src);
        long n = rows.rowLength();
        long ds = rows.rowStride(0);
        long ss = rows.rowStride(1);
        if (st == DType.F32 && dt == DType.F32 && ss == 1 && ds == 1) {
            rows.forEach(off -> {
                long di = off[0] * 4;
                long si = off[1] * 4;
                for (long i = 0; i < n; i++) {
                    d.set(F32_LE, di + 4 * i, d.get(F32_LE, di + 4 * i) + s.get(F32_LE, si + 4 * i));
                }
            });
            return;
        }
        int sb = st.byteSize();
        int db = dt.byteSize();
        rows.forEach(off -> {
            long di = off[0] * db;
            long si = off[1] * sb;
            for (long i = 0; i < n; i++) {
                dt.write(d, di, dt.read(d, di) + st.read(s, si));
                di += ds * db;
                si += ss * sb;
            }
        });
    }

    @Override
    public void mergeAttention(Tensor out, Tensor lse, Tensor blockOut, Tensor blockLse) {
        requireOpen();
        requireSameShape("mergeAttention", blockOut, out);
        requireSameShape("mergeAttention", blockLse, lse);
        if (out.rank() != 4 || lse.rank() != 3 || lse.size(0) != out.size(0) || lse.size(1) != out.size(2)
                || lse.size(2) != out.size(1)) {
            throw new IllegalArgumentException("mergeAttention needs out [b, s, h, d] and lse [b, h, s], got out "
                    + Arrays.toString(out.shape()) + " and lse " + Arrays.toString(lse.shape()));
        }
        for (Tensor t : new Tensor[] {out, lse, blockLse}) {
            if (t.dtype() != DType.F32) {
                throw new IllegalArgumentException("mergeAttention keeps out, lse and the block's lse in F32, got "
                        + t.describe());
            }
        }
        requireHost("mergeAttention", "out", out);
        requireHost("mergeAttention", "lse", lse);
        requireHost("mergeAttention", "blockOut", blockOut);
        requireHost("mergeAttention", "blockLse", blockLse);
        MemorySegment o = out.segment();
        MemorySegment l = lse.segment();
        MemorySegment bo = blockOut.segment();
        MemorySegment bl = blockLse.segment();
        DType bt = blockOut.dtype();
        int bb = bt.byteSize();
        long batch = out.size(0), seq = out.size(1), heads = out.size(2), dim = out.size(3);
        long od = out.stride(3) * 4, bd = blockOut.stride(3) * bb;
        for (long bi = 0; bi < batch; bi++) {
            for (long si = 0; si < seq; si++) {
                for (long hi = 0; hi < heads; hi++) {
                    long lOff = (lse.offset() + bi * lse.stride(0) + hi * lse.stride(1) + si * lse.stride(2)) * 4;
                    long blOff = (blockLse.offset() + bi * blockLse.stride(0) + hi * blockLse.stride(1)
                            + si * blockLse.stride(2)) * 4;
                    float l2 = bl.get(F32_LE, blOff);
                    if (l2 == Float.NEGATIVE_INFINITY) {
                        continue; // the block saw no key for this row: nothing to fold in
                    }
                    float l1 = l.get(F32_LE, lOff);
                    long oOff = (out.offset() + bi * out.stride(0) + si * out.stride(1) + hi * out.stride(2)) * 4;
                    long bOff = (blockOut.offset() + bi * blockOut.stride(0) + si * blockOut.stride(1)
                            + hi * blockOut.stride(2)) * bb;
                    float w1;
                    float w2;
                    float merged;
                    if (l1 == Float.NEGATIVE_INFINITY) {
                        w1 = 0f; // first keys for this row: take the block as it is (exp(-inf - l2) = 0)
                        w2 = 1f;
                        merged = l2;
                    } else {
                        // l = max + log1p(exp(-|l1 - l2|)): never exponentiates a positive number.
                        double m = Math.max(l1, l2);
                        double lm = m + Math.log1p(Math.exp(-Math.abs((double) l1 - l2)));
                        w1 = (float) Math.exp(l1 - lm);
                        w2 = (float) Math.exp(l2 - lm);
                        merged = (float) lm;
                    }
                    l.set(F32_LE, lOff, merged);
                    for (long x = 0; x < dim; x++) {
                        long oi = oOff + x * od;
                        float prev = w1 == 0f ? 0f : w1 * o.get(F32_LE, oi);
                        o.set(F32_LE, oi, prev + w2 * bt.read(bo, bOff + x * bd));
                    }
                }
            }
        }
    }

    @Override
    public void synchronize() {
        requireOpen();
    }

    @Override
    public void close() {
        closed = true;
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("CPU backend is closed");
        }
    }

    private static void requireSameShape(String op, Tensor a, Tensor b) {
        if (!a.sameShape(b)) {
            throw new IllegalArgumentException(op + ": shapes differ, " + a.describe() + " vs " + b.describe());
        }
    }

    private static void requireHost(String op, String name, Tensor t) {
        if (!t.isHost()) {
            throw new IllegalArgumentException(op + ": " + name + " " + t.describe()
                    + " is device memory; the CPU backend works on host tensors");
        }
    }
}
