package org.usp4j.cpu;

import java.util.Objects;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.SegmentedAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Flash-style attention on the CPU: blockwise, multi-threaded, vectorised with the JDK's Vector API,
 * arithmetic in float32 whatever the storage dtype (F32, BF16, F16). It never materialises an
 * s_q x s_kv matrix: a forward work item holds a block of up to 768 query rows and streams 128-key
 * tiles past it with per-row running max and sum; a backward item owns up to 576 keys (their dK, dV)
 * and streams 64-row query tiles past them, recomputing P from lse. Every tile product runs on operands
 * packed for the micro-kernel ({@code TileGemm}), whose panel width follows the vector width chosen at
 * run time. Per-thread scratch is a few such tiles (about 1 MB at head_dim 64). dQ sums over key chunks
 * that different threads own, so the backward adds dQ tiles into dq under a per-head lock; when dq is
 * not float32 it first sums them in a float32 buffer the size of dq. See {@code FlashForward} and
 * {@code FlashBackward}.
 *
 * <p>Work runs on a {@link ForkJoinPool}: by default one shared pool with a thread per available
 * processor, shared by every kernel instance (and so by the in-process ranks that each call it), so
 * concurrent calls queue up instead of oversubscribing the cores. Calls are thread-safe. All tensors
 * must be in host memory with head_dim contiguous; other strides are free. Memory of a confined arena
 * can only be touched by its owner thread, so a call with such a tensor (made from that thread) runs
 * on the calling thread alone; use shared (or global, automatic) arenas for parallel speed. The
 * backward's dq sums arrive in a thread-dependent order, so results can differ in the last bits from
 * run to run. A mask with sequence segments (packed sequences) runs as one plain call per segment on
 * views of the block ({@link SegmentedAttention}); the tiled passes only ever see plain masks.
 *
 * <p>Measured on 2 AMD EPYC cores (Zen 4, family 25 model 17, AVX-512) at s = 4096, h = 16, bf16, JMH
 * on a shared machine: see the README's benchmark table for the fractions of the FMA peak
 * ({@link FmaPeak}) at 512- and 256-bit vectors.
 */
public final class CpuAttentionKernel implements AttentionKernel {

    private static final Logger LOG = LogManager.getLogger(CpuAttentionKernel.class);

    private static final Thread OTHER_THREAD = new Thread(() -> { });

    private final ForkJoinPool pool;
    private final Tiling tiling;

    /** A kernel on the shared pool (one thread per available processor). */
    public CpuAttentionKernel() {
        this(SharedPool.POOL);
    }

    /** A kernel whose work runs on {@code pool}; the caller keeps ownership of the pool. */
    public CpuAttentionKernel(ForkJoinPool pool) {
        this(pool, Tiling.DEFAULT);
    }

    CpuAttentionKernel(ForkJoinPool pool, Tiling tiling) {
        this.pool = Objects.requireNonNull(pool, "pool");
        this.tiling = Objects.requireNonNull(tiling, "tiling");
        LOG.debug("CPU attention kernel: {} threads, {}-lane float vectors, {}", pool.getParallelism(),
                TileGemm.LANES, tiling);
    }

    /**
     * The width in bits of the float vectors every call computes with: the machine's widest, unless the
     * system property {@code usp4j.cpu.vectorBits} (128, 256 or 512) named a narrower one before the
     * kernel classes loaded.
     */
    public static int vectorBitSize() {
        return TileGemm.SPECIES.vectorBitSize();
    }

    /** The pool every kernel made without one shares (one thread per available processor). */
    static ForkJoinPool sharedPool() {
        return SharedPool.POOL;
    }

    /** The number of threads that work on one call. */
    public int parallelism() {
        return pool.getParallelism();
    }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, Mask mask, float scale, Tensor out, Tensor lse) {
        Objects.requireNonNull(mask, "mask");
        if (mask.segmented()) { // packed sequences: one plain call per sequence segment
            SegmentedAttention.forward(this, q, k, v, mask, scale, out, lse, CpuAttentionKernel::fillHost);
            return;
        }
        AttentionShapes shapes = AttentionShapes.ofForward(q, k, v, out, lse);
        requireHostRows("q", q);
        requireHostRows("k", k);
        requireHostRows("v", v);
        requireHostRows("out", out);
        requireHost("lse", lse);
        requireFinite(scale);
        AttentionDims dims = AttentionDims.of(shapes);

        ForkJoinPool runner = poolFor(q, k, v, out, lse);
        FlashForward pass = new FlashForward(dims, new TensorRows(q), new TensorRows(k), new TensorRows(v),
                new TensorRows(out), new LseTensor(lse), mask, scale, tiling, parallelism(runner));
        WorkItems.run(runner, pass.items(), pass::run);
    }

    @Override
    public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor lse, Mask mask, float scale,
                         Tensor dq, Tensor dk, Tensor dv, boolean accumulate) {
        Objects.requireNonNull(mask, "mask");
        if (mask.segmented()) {
            SegmentedAttention.backward(this, q, k, v, out, dout, lse, mask, scale, dq, dk, dv, accumulate,
                    CpuAttentionKernel::fillHost);
            return;
        }
        AttentionShapes shapes = AttentionShapes.ofBackward(q, k, v, out, dout, lse, dq, dk, dv);
        requireHostRows("q", q);
        requireHostRows("k", k);
        requireHostRows("v", v);
        requireHostRows("out", out);
        requireHostRows("dout", dout);
        requireHost("lse", lse);
        requireHostRows("dq", dq);
        requireHostRows("dk", dk);
        requireHostRows("dv", dv);
        requireFinite(scale);
        AttentionDims dims = AttentionDims.of(shapes);

        ForkJoinPool runner = poolFor(q, k, v, out, dout, lse, dq, dk, dv);
        FlashBackward pass = new FlashBackward(dims, new TensorRows(q), new TensorRows(k), new TensorRows(v),
                new TensorRows(out), new TensorRows(dout), new LseTensor(lse), new TensorRows(dq),
                dq.dtype() == DType.F32, new TensorRows(dk), new TensorRows(dv), accumulate, mask,
                scale, tiling, parallelism(runner));
        WorkItems.run(runner, pass.statisticsItems(), pass::runStatistics);
        WorkItems.run(runner, pass.gradientItems(), pass::runGradients);
        if (pass.needsDqPass()) {
            WorkItems.run(runner, pass.dqItems(), pass::writeDq);
        }
    }

    /** Fills the rows a segmented mask leaves out (never the hot path: only rows outside every sequence). */
    private static void fillHost(Tensor t, float value) {
        requireHost("filled tensor", t);
        DType dtype = t.dtype();
        java.lang.foreign.MemorySegment seg = t.segment();
        HostTensors.forEachOffset(t, (i, off) -> dtype.write(seg, off, value));
    }

    /**
     * The pool, or null (run on the caller) when some tensor lives in a confined arena that other threads
     * may not touch. A thread object that never runs serves as "some other thread" for the check.
     */
    private ForkJoinPool poolFor(Tensor... tensors) {
        for (Tensor t : tensors) {
            if (!t.segment().isAccessibleBy(OTHER_THREAD)) {
                LOG.debug("{} is confined to its owner thread: running the call on the calling thread", t);
                return null;
            }
        }
        return pool;
    }

    private static int parallelism(ForkJoinPool runner) {
        return runner == null ? 1 : runner.getParallelism();
    }

    private static void requireHost(String name, Tensor t) {
        Objects.requireNonNull(t, name);
        if (!t.isHost()) {
            throw new IllegalArgumentException("the CPU attention kernel needs host tensors, but " + name + " is "
                    + t.describe());
        }
        if (!t.segment().isAccessibleBy(Thread.currentThread())) {
            throw new IllegalArgumentException(name + " " + t.describe()
                    + " lives in an arena confined to another thread than the caller " + Thread.currentThread().getName());
        }
    }

    private static void requireHostRows(String name, Tensor t) {
        requireHost(name, t);
        if (t.size(3) > 1 && t.stride(3) != 1) {
            throw new IllegalArgumentException(name + " must have a contiguous head_dim (stride 1), got strides "
                    + java.util.Arrays.toString(t.strides()));
        }
    }

    private static void requireFinite(float scale) {
        if (!Float.isFinite(scale)) {
            throw new IllegalArgumentException("scale must be finite, got " + scale);
        }
    }

    /** The default pool: daemon threads, one per processor, created on first use. */
    private static final class SharedPool {
        static final ForkJoinPool POOL = create();

        private static ForkJoinPool create() {
            AtomicInteger counter = new AtomicInteger();
            return new ForkJoinPool(Runtime.getRuntime().availableProcessors(), p -> {
                ForkJoinWorkerThread thread = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(p);
                thread.setName("usp4j-cpu-attention-" + counter.getAndIncrement());
                thread.setDaemon(true);
                return thread;
            }, null, false);
        }
    }
}
