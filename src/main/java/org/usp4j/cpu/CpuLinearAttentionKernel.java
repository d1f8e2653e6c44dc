package org.usp4j.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.LinearAttentionKernel;
import org.usp4j.kernel.LinearMask;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Linear attention on the CPU: chunked, right product first ({@link LinearChunks}), vectorised through
 * the same register-blocked products as the softmax kernel, arithmetic in float32 whatever the storage
 * dtype. A work item is one output head (a query head for out and dq, a KV head for dk, dv and the
 * states, which sum over the KV head's query heads); it sweeps its chunks in order, so a call has
 * b * h (forward) or b * (h + 2 h_kv) (backward) items. Results do not depend on the thread count.
 *
 * <p>Work runs on a {@link ForkJoinPool}, by default the one the softmax kernels share. All tensors must
 * be in host memory with head_dim contiguous; a call with a tensor of a confined arena runs on the
 * calling thread.
 */
public final class CpuLinearAttentionKernel implements LinearAttentionKernel {

    private static final Logger LOG = LogManager.getLogger(CpuLinearAttentionKernel.class);
    private static final Thread OTHER_THREAD = new Thread(() -> { });
    private static final ValueLayout.OfFloat F32_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final ForkJoinPool pool;
    private final int chunk;

    /** A kernel on the pool the softmax kernels share. */
    public CpuLinearAttentionKernel() {
        this(CpuAttentionKernel.sharedPool());
    }

    /** A kernel whose work runs on {@code pool}; the caller keeps ownership of the pool. */
    public CpuLinearAttentionKernel(ForkJoinPool pool) {
        this(pool, LinearChunks.DEFAULT_CHUNK);
    }

    CpuLinearAttentionKernel(ForkJoinPool pool, int chunk) {
        this.pool = Objects.requireNonNull(pool, "pool");
        this.chunk = chunk;
        new LinearChunks(1, 1, LinearMask.NONE, chunk); // checks the chunk size
        LOG.debug("CPU linear attention kernel: {} threads, chunks of {} rows", pool.getParallelism(), chunk);
    }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, LinearMask mask, float scale, Tensor earlierState,
                        Tensor out) {
        Call c = new Call(LinearAttentionKernel.shapes(q, k, v), mask, scale);
        c.sh.requireQueryShaped("out", out);
        LinearAttentionKernel.requireState("earlierState", c.sh, earlierState);
        requireHost(q, k, v, out, earlierState);
        TensorRows qr = new TensorRows(q), kr = new TensorRows(k), vr = new TensorRows(v), or = new TensorRows(out);
        TensorRows pr = earlierState == null ? null : new TensorRows(earlierState);
        run(c.items(c.h), poolFor(q, k, v, out, earlierState), item -> {
            int b = item / c.h, h = item % c.h, kh = h / c.group;
            LinearChunks.Scratch s = c.chunks.scratch();
            start(c.chunks, pr, b, kh, false, s);
            c.chunks.attend(head(qr, b, h), scale, heads(kr, b, kh), heads(vr, b, kh), false, head(or, b, h), s);
        });
    }

    @Override
    public void keyValueState(Tensor k, Tensor v, LinearMask mask, Tensor state) {
        Call c = new Call(LinearAttentionKernel.shapes(k, k, v), mask, 1f);
        LinearAttentionKernel.requireState("state", c.sh, Objects.requireNonNull(state, "state"));
        requireHost(k, v, state);
        TensorRows kr = new TensorRows(k), vr = new TensorRows(v), sr = new TensorRows(state);
        run(c.items(c.hkv), poolFor(k, v, state), item -> {
            int b = item / c.hkv, kh = item % c.hkv;
            LinearChunks.Scratch s = c.chunks.scratch();
            c.chunks.clearState(s);
            c.chunks.accumulateState(heads(kr, b, kh), heads(vr, b, kh), false, s);
            c.chunks.storeState(sr, b, kh, s);
        });
    }

    @Override
    public void queryGradientState(Tensor q, Tensor dout, LinearMask mask, Tensor state) {
        Objects.requireNonNull(state, "state");
        if (!q.sameShape(dout) || state.rank() != 4 || q.rank() != 4 || state.size(1) <= 0) {
            throw new IllegalArgumentException("queryGradientState needs q and dout [b, n, h, d] and a state "
                    + "[b, h_kv, d, d], got " + q.describe() + ", " + dout.describe() + ", " + state.describe());
        }
        // q stands in for k and v of the KV head count: the shape rules are those of a block.
        Tensor kvShaped = q.slice(2, 0, state.size(1));
        Call c = new Call(LinearAttentionKernel.shapes(q, kvShaped, kvShaped), mask, 1f);
        LinearAttentionKernel.requireState("state", c.sh, state);
        requireHost(q, dout, state);
        TensorRows qr = new TensorRows(q), dr = new TensorRows(dout), sr = new TensorRows(state);
        run(c.items(c.hkv), poolFor(q, dout, state), item -> {
            int b = item / c.hkv, kh = item % c.hkv;
            LinearChunks.Scratch s = c.chunks.scratch();
            c.chunks.clearState(s);
            c.chunks.accumulateState(c.group(qr, b, kh), c.group(dr, b, kh), true, s);
            c.chunks.storeState(sr, b, kh, s);
        });
    }

    @Override
    public void backward(Tensor q, Tensor k, Tensor v, Tensor dout, LinearMask mask, float scale,
                         Tensor earlierState, Tensor laterGradientState, Tensor dq, Tensor dk, Tensor dv) {
        Call c = new Call(LinearAttentionKernel.shapes(q, k, v), mask, scale);
        c.sh.requireQueryShaped("dout", dout);
        c.sh.requireQueryShaped("dq", dq);
        c.sh.requireKvShaped("dk", dk);
        c.sh.requireKvShaped("dv", dv);
        LinearAttentionKernel.requireState("earlierState", c.sh, earlierState);
        LinearAttentionKernel.requireState("laterGradientState", c.sh, laterGradientState);
        requireHost(q, k, v, dout, dq, dk, dv, earlierState, laterGradientState);
        TensorRows qr = new TensorRows(q), kr = new TensorRows(k), vr = new TensorRows(v);
        TensorRows dor = new TensorRows(dout), dqr = new TensorRows(dq), dkr = new TensorRows(dk);
        TensorRows dvr = new TensorRows(dv);
        TensorRows pr = earlierState == null ? null : new TensorRows(earlierState);
        TensorRows lr = laterGradientState == null ? null : new TensorRows(laterGradientState);
        int queryItems = c.batch * c.h;
        int kvItems = c.batch * c.hkv;
        run(Math.addExact(queryItems, 2 * kvItems), poolFor(q, k, v, dout, dq, dk, dv, earlierState,
                laterGradientState), item -> {
            LinearChunks.Scratch s = c.chunks.scratch();
            if (item < queryItems) {
                // dq_i = scale [sum_j w (do_i . v_j) k_j + G^(i+1) P do_i]: do attends over (v, k) from P^T.
                int b = item / c.h, h = item % c.h, kh = h / c.group;
                start(c.chunks, pr, b, kh, true, s);
                c.chunks.attend(head(dor, b, h), scale, heads(vr, b, kh), heads(kr, b, kh), false, head(dqr, b, h), s);
                return;
            }
            int kvItem = (item - queryItems) % kvItems;
            int b = kvItem / c.hkv, kh = kvItem % c.hkv;
            if (item - queryItems < kvItems) {
                // dk_j = scale [sum_i w (v_j . do_i) q_i + G^(n-j) L v_j]: v attends over (do, q), later in time.
                start(c.chunks, lr, b, kh, true, s);
                c.chunks.attend(head(vr, b, kh), scale, c.group(dor, b, kh), c.group(qr, b, kh), true,
                        head(dkr, b, kh), s);
            } else {
                // dv_j = scale [sum_i w (k_j . q_i) do_i + G^(n-j) L^T k_j]: k attends over (q, do).
                start(c.chunks, lr, b, kh, false, s);
                c.chunks.attend(head(kr, b, kh), scale, c.group(qr, b, kh), c.group(dor, b, kh), true,
                        head(dvr, b, kh), s);
            }
        });
    }

    @Override
    public void addState(Tensor dst, Tensor src, float factor) {
        if (!dst.sameShape(src) || dst.dtype() != DType.F32 || src.dtype() != DType.F32) {
            throw new IllegalArgumentException("addState needs two F32 states of one shape, got " + dst.describe()
                    + " and " + src.describe());
        }
        requireHost(dst, src);
        MemorySegment d = dst.segment();
        MemorySegment s = src.segment();
        StridedRows rows = StridedRows.of(dst, src);
        long n = rows.rowLength();
        long ds = rows.rowStride(0) * 4;
        long ss = rows.rowStride(1) * 4;
        rows.forEach(off -> {
            long di = off[0] * 4;
            long si = off[1] * 4;
            for (long i = 0; i < n; i++, di += ds, si += ss) {
                d.set(F32_LE, di, d.get(F32_LE, di) + factor * s.get(F32_LE, si));
            }
        });
    }

    /** One call's checked dimensions and its chunk sweeper. */
    private final class Call {
        final AttentionShapes sh;
        final int batch;
        final int h;
        final int hkv;
        final int group;
        final LinearChunks chunks;

        Call(AttentionShapes sh, LinearMask mask, float scale) {
            Objects.requireNonNull(mask, "mask");
            if (!Float.isFinite(scale)) {
                throw new IllegalArgumentException("scale must be finite, got " + scale);
            }
            AttentionDims dims = AttentionDims.of(sh);
            this.sh = sh;
            this.batch = dims.batch();
            this.h = dims.heads();
            this.hkv = dims.kvHeads();
            this.group = dims.groupSize();
            this.chunks = new LinearChunks(dims.seqQ(), dims.headDim(), mask, chunk);
        }

        int items(int headsPerBatch) {
            return Math.multiplyExact(batch, headsPerBatch);
        }

        /** The query heads of KV head kh in {@code rows}. */
        LinearChunks.HeadRows[] group(TensorRows rows, int b, int kh) {
            LinearChunks.HeadRows[] g = new LinearChunks.HeadRows[group];
            for (int t = 0; t < group; t++) {
                g[t] = new LinearChunks.HeadRows(rows, b, kh * group + t);
            }
            return g;
        }
    }

    /** The sweep's first state: the given one (or its transpose), or zero. */
    private static void start(LinearChunks chunks, TensorRows state, int b, int kh, boolean transposed,
                              LinearChunks.Scratch s) {
        if (state == null) {
            chunks.clearState(s);
        } else {
            chunks.loadState(state, b, kh, transposed, s);
        }
    }

    private static LinearChunks.HeadRows head(TensorRows rows, int b, int h) {
        return new LinearChunks.HeadRows(rows, b, h);
    }

    private static LinearChunks.HeadRows[] heads(TensorRows rows, int b, int h) {
        return new LinearChunks.HeadRows[] {head(rows, b, h)};
    }

    private static void run(int items, ForkJoinPool runner, java.util.function.IntConsumer work) {
        WorkItems.run(runner, items, work);
    }

    /** The pool, or null (run on the caller) when a tensor lives in an arena other threads may not touch. */
    private ForkJoinPool poolFor(Tensor... tensors) {
        for (Tensor t : tensors) {
            if (t != null && !t.segment().isAccessibleBy(OTHER_THREAD)) {
                return null;
            }
        }
        return pool;
    }

    private static void requireHost(Tensor... tensors) {
        for (Tensor t : tensors) {
            if (t == null) {
                continue;
            }
            if (!t.isHost()) {
                throw new IllegalArgumentException("the CPU linear attention kernel needs host tensors, got "
                        + t.describe());
            }
            if (!t.segment().isAccessibleBy(Thread.currentThread())) {
                throw new IllegalArgumentException(t.describe() + " lives in an arena confined to another thread");
            }
            if (t.size(t.rank() - 1) > 1 && t.stride(t.rank() - 1) != 1) {
                throw new IllegalArgumentException("the last dimension must be contiguous, got " + t.describe()
                        + " with strides " + Arrays.toString(t.strides()));
            }
        }
    }
}
