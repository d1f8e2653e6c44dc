package org.usp4j.gpu.sdpa;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.cudnn.DataType;
import org.usp4j.gpu.CudaBackend;
import org.usp4j.gpu.DeviceCalls;
import org.usp4j.gpu.GraphSpec;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.SegmentedAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.Tensor;

/**
 * Attention blocks on cuDNN's fused flash-attention engines, through the composite SDPA graphs of
 * {@link SdpaGraphs}: forward with the softmax stats (the log-sum-exp the ring merges with) and
 * backward from the final out and lse. Everything is enqueued on the backend's stream.
 *
 * <p>cuDNN wants io tensors in bf16 or f16 with head_dim contiguous and 16-byte aligned addresses,
 * and dense float32 stats. Caller tensors that already fit are bound in place; others (a float32
 * output accumulator, a strided lse slice, accumulate-mode gradients) go through scratch memory and
 * one element-wise copy or add. dQ is the graph's io-typed output; the float32 dQ_accum and
 * softmax_sum tensors are cuDNN's scratch, placed behind its workspace. Plans are cached by shape,
 * dtype, mask, scale and strides; scratch and workspace memory is kept between calls
 * ({@link ScratchBuffers}), so a call in steady state allocates nothing.
 *
 * <p>Packed sequences (a {@link Mask} with segments) run as one plain graph call per sequence segment
 * on views of the block ({@link SegmentedAttention}), the rows outside every segment filled on the
 * stream; every distinct segment length is a plan of its own. Each segment's plain mask must be one
 * the graphs express, and the backward refuses 1-token segments (s_q = s_kv = 1 has no engine), both
 * in {@link #validateForward}/{@link #validateBackward}, before any transfer.
 */
public final class CudnnAttention implements CudaBackend.Attention {

    private static final Logger LOG = LogManager.getLogger(CudnnAttention.class);
    private static final int MAX_CACHED_PLANS = 64;

    /** What identifies a plan: direction, dtype, sizes, mask, scale and the io tensors' strides. */
    record PlanKey(boolean backward, DType io, SdpaGraphs.Shape shape, Mask mask, float scale, List<Long> strides) {
    }

    private final CudaBackend backend;
    private final DeviceCalls calls;
    private final DeviceCalls.CudnnContext cudnn;
    private final long cudnnVersion;
    private final Map<PlanKey, DeviceCalls.Plan> plans = new LinkedHashMap<>(16, 0.75f, true);
    private final ScratchBuffers scratch;
    private long planBuilds;
    private boolean closed;

    public CudnnAttention(CudaBackend backend) {
        this.backend = backend;
        this.calls = backend.calls();
        this.cudnnVersion = calls.cudnnVersion();
        this.cudnn = calls.createCudnn(backend.stream());
        this.scratch = new ScratchBuffers(calls, backend.stream());
    }

    /** How many plans this kernel has finalized (a cache hit builds none). */
    public synchronized long planBuilds() {
        return planBuilds;
    }

    public synchronized int cachedPlans() {
        return plans.size();
    }

    @Override
    public synchronized void forward(Tensor q, Tensor k, Tensor v, Mask mask, float scale, Tensor out, Tensor lse) {
        requireOpen();
        if (mask.segmented()) {
            SegmentedAttention.forward(this, q, k, v, mask, scale, out, lse, backend::fill);
            return;
        }
        SdpaGraphs.requireMaskSupported(mask);
        AttentionShapes sh = AttentionShapes.ofForward(q, k, v, out, lse);
        DType io = requireIo(sh, q, k, v);
        requireDevice(out, lse);
        requireScale(scale);
        scratch.beginCall();
        Tensor o = bindable(out, io) ? out : scratch.tensor(io, out.shape());
        Tensor stats = lse.isContiguous() && aligned(lse) ? lse : scratch.tensor(DType.F32, lse.shape());
        Tensor qb = input(q), kb = input(k), vb = input(v);
        SdpaGraphs.Shape shape = shape(sh);
        List<Long> strides = strides(qb, kb, vb, o);
        DeviceCalls.Plan plan = plan(new PlanKey(false, io, shape, mask, scale, strides), () ->
                SdpaGraphs.forward(shape, cudnnType(io), mask, strideArrays(qb, kb, vb, o), cudnnVersion), scale);
        Map<Long, Long> at = new HashMap<>();
        at.put(SdpaGraphs.Q, qb.deviceAddress());
        at.put(SdpaGraphs.K, kb.deviceAddress());
        at.put(SdpaGraphs.V, vb.deviceAddress());
        at.put(SdpaGraphs.O, o.deviceAddress());
        at.put(SdpaGraphs.STATS, stats.deviceAddress());
        long workspace = plan.workspaceBytes() == 0 ? 0 : scratch.bytes(plan.workspaceBytes()).address();
        calls.execute(cudnn, plan, at, workspace);
        if (o != out) {
            backend.copy(o, out);
        }
        if (stats != lse) {
            backend.copy(stats, lse);
        }
        scratch.endCall();
    }

    @Override
    public synchronized void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor lse, Mask mask,
                                      float scale, Tensor dq, Tensor dk, Tensor dv, boolean accumulate) {
        requireOpen();
        if (mask.segmented()) {
            SegmentedAttention.backward(this, q, k, v, out, dout, lse, mask, scale, dq, dk, dv, accumulate,
                    backend::fill);
            return;
        }
        SdpaGraphs.requireMaskSupported(mask);
        AttentionShapes sh = AttentionShapes.ofBackward(q, k, v, out, dout, lse, dq, dk, dv);
        DType io = requireIo(sh, q, k, v);
        requireDevice(out, dout, lse, dq, dk, dv);
        requireScale(scale);
        SdpaGraphs.requireBackwardSupported(shape(sh), cudnnVersion);
        scratch.beginCall();
        Tensor qb = input(q), kb = input(k), vb = input(v);
        Tensor ob = inputAs(out, io), dob = inputAs(dout, io);
        Tensor stats = lse.isContiguous() && aligned(lse) ? lse : copyOf(lse, DType.F32);
        // dQ is the io-typed output of the graph's final IDENTITY(dQ_accum) op. dQ_accum is cuDNN's
        // float32 scratch, as in cudnn-frontend's CompositeSDPABackwardNode, which counts it in the
        // workspace: it does not hold dQ after execution (reading it gave relative errors of 1.2 on an
        // H200). Precision across ring steps comes from the strategy's own float32 accumulation.
        Tensor dqOut = !accumulate && bindable(dq, io) ? dq : scratch.tensor(io, dq.shape());
        Tensor dkOut = !accumulate && bindable(dk, io) ? dk : scratch.tensor(io, dk.shape());
        Tensor dvOut = !accumulate && bindable(dv, io) ? dv : scratch.tensor(io, dv.shape());
        long b = sh.batch(), h = sh.heads(), sq = sh.seqQ(), d = sh.headDim();
        SdpaGraphs.Shape shape = shape(sh);
        Tensor[] io8 = {qb, kb, vb, ob, dob, dqOut, dkOut, dvOut};
        DeviceCalls.Plan plan = plan(new PlanKey(true, io, shape, mask, scale, strides(io8)), () ->
                SdpaGraphs.backward(shape, cudnnType(io), mask, strideArrays(io8), cudnnVersion), scale);
        Map<Long, Long> at = new HashMap<>();
        long[] uids = {SdpaGraphs.Q, SdpaGraphs.K, SdpaGraphs.V, SdpaGraphs.O, SdpaGraphs.DO, SdpaGraphs.DQ,
                SdpaGraphs.DK, SdpaGraphs.DV};
        for (int i = 0; i < uids.length; i++) {
            at.put(uids[i], io8[i].deviceAddress());
        }
        at.put(SdpaGraphs.STATS, stats.deviceAddress());
        // The two float32 scratch tensors live behind cuDNN's own workspace, as the frontend places them.
        long cudnnBytes = ScratchBuffers.align(plan.workspaceBytes());
        long dqAccumBytes = ScratchBuffers.align(b * h * sq * d * Float.BYTES);
        long softmaxSumBytes = ScratchBuffers.align(b * h * sq * Float.BYTES);
        DevicePointer ws = scratch.bytes(cudnnBytes + dqAccumBytes + softmaxSumBytes);
        DevicePointer dqAccum = ws.slice(cudnnBytes, dqAccumBytes);
        if (cudnnVersion < 90600) {
            calls.memset(dqAccum, 0, backend.stream()); // before 9.6 the backward accumulates into it
        }
        at.put(SdpaGraphs.DQ_ACCUM, dqAccum.address());
        at.put(SdpaGraphs.SOFTMAX_SUM, ws.address() + cudnnBytes + dqAccumBytes);
        calls.execute(cudnn, plan, at, ws.address());
        for (Tensor[] pair : new Tensor[][] {{dqOut, dq}, {dkOut, dk}, {dvOut, dv}}) {
            if (pair[0] != pair[1]) {
                place(pair[0], pair[1], accumulate);
            }
        }
        scratch.endCall();
    }

    @Override
    public void validateForward(AttentionShapes block, DType dtype, Mask mask) {
        if (mask.segmented()) {
            SegmentedAttention.validateForward(this, block, dtype, mask);
            return;
        }
        SdpaGraphs.requireMaskSupported(mask);
        requireIo(block, dtype);
    }

    @Override
    public void validateBackward(AttentionShapes block, DType dtype, Mask mask) {
        if (mask.segmented()) {
            SegmentedAttention.validateBackward(this, block, dtype, mask);
            return;
        }
        SdpaGraphs.requireMaskSupported(mask);
        requireIo(block, dtype);
        SdpaGraphs.requireBackwardSupported(shape(block), cudnnVersion);
    }

    private void place(Tensor result, Tensor target, boolean accumulate) {
        if (accumulate) {
            backend.add(target, result);
        } else {
            backend.copy(result, target);
        }
    }

    private interface GraphFactory {
        GraphSpec build();
    }

    private DeviceCalls.Plan plan(PlanKey key, GraphFactory factory, float scale) {
        DeviceCalls.Plan plan = plans.get(key);
        if (plan != null) {
            return plan;
        }
        GraphSpec spec = factory.build();
        Map<Long, Float> byValue = new HashMap<>();
        byValue.put(SdpaGraphs.SCALE, scale);
        byValue.put(SdpaGraphs.ONE, 1f);
        byValue.put(SdpaGraphs.NEG_INF, SdpaGraphs.maskFill(cudnnVersion));
        byValue.keySet().retainAll(spec.boundTensors().stream().map(GraphSpec.Tensor::uid).toList());
        Map<Long, int[]> ints = new HashMap<>();
        if (spec.boundTensors().stream().anyMatch(t -> t.uid() == SdpaGraphs.SEQ_LEN_Q)) {
            int[] seqQ = new int[(int) key.shape().batch()];
            int[] seqKv = new int[seqQ.length];
            Arrays.fill(seqQ, (int) key.shape().seqQ());
            Arrays.fill(seqKv, (int) key.shape().seqKv());
            ints.put(SdpaGraphs.SEQ_LEN_Q, seqQ);
            ints.put(SdpaGraphs.SEQ_LEN_KV, seqKv);
        }
        plan = calls.buildPlan(cudnn, spec, byValue, ints);
        planBuilds++;
        plans.put(key, plan);
        if (plans.size() > MAX_CACHED_PLANS) {
            backend.synchronize(); // an evicted plan may still be queued
            var eldest = plans.entrySet().iterator().next();
            calls.destroy(eldest.getValue());
            plans.remove(eldest.getKey());
        }
        return plan;
    }

    private Tensor input(Tensor t) {
        return aligned(t) ? t : copyOf(t, t.dtype());
    }

    private Tensor inputAs(Tensor t, DType io) {
        return t.dtype() == io && aligned(t) ? t : copyOf(t, io);
    }

    private Tensor copyOf(Tensor t, DType dtype) {
        Tensor c = scratch.tensor(dtype, t.shape());
        backend.copy(t, c);
        return c;
    }

    private static boolean bindable(Tensor t, DType io) {
        return t.dtype() == io && aligned(t);
    }

    /** cuDNN is told every io tensor is 16-byte aligned, and so are its row strides. */
    private static boolean aligned(Tensor t) {
        int e = t.dtype().byteSize();
        if (t.deviceAddress() % 16 != 0) {
            return false;
        }
        for (int i = 0; i < t.rank() - 1; i++) {
            if (t.size(i) > 1 && (t.stride(i) * e) % 16 != 0) {
                return false;
            }
        }
        return t.rank() < 1 || t.size(t.rank() - 1) <= 1 || t.stride(t.rank() - 1) == 1;
    }

    private static SdpaGraphs.Shape shape(AttentionShapes sh) {
        return new SdpaGraphs.Shape(sh.batch(), sh.heads(), sh.kvHeads(), sh.seqQ(), sh.seqKv(), sh.headDim());
    }

    private static List<Long> strides(Tensor... tensors) {
        List<Long> all = new ArrayList<>();
        for (Tensor t : tensors) {
            for (long s : t.strides()) {
                all.add(s);
            }
        }
        return List.copyOf(all);
    }

    private static long[][] strideArrays(Tensor... tensors) {
        long[][] all = new long[tensors.length][];
        for (int i = 0; i < tensors.length; i++) {
            all[i] = tensors[i].strides();
        }
        return all;
    }

    private static DType requireIo(AttentionShapes sh, Tensor q, Tensor k, Tensor v) {
        requireDevice(q, k, v);
        if (k.dtype() != q.dtype() || v.dtype() != q.dtype()) {
            throw new IllegalArgumentException("q, k and v must share one dtype, got " + q.dtype() + ", " + k.dtype()
                    + ", " + v.dtype());
        }
        return requireIo(sh, q.dtype());
    }

    private static DType requireIo(AttentionShapes sh, DType io) {
        if (io == DType.F32) {
            throw new IllegalArgumentException("cuDNN SDPA computes on BF16 or F16 inputs, got F32 q, k and v;"
                    + " convert them to bf16 or f16 first, or use the cpu backend, which computes on F32");
        }
        if (sh.headDim() % 8 != 0 || sh.headDim() > 256) {
            throw new IllegalArgumentException("cuDNN SDPA needs head_dim a multiple of 8 and at most 256, got "
                    + sh.headDim());
        }
        return io;
    }

    private static void requireDevice(Tensor... tensors) {
        for (Tensor t : tensors) {
            if (!t.isDevice()) {
                throw new IllegalArgumentException(t.describe() + " must be in device memory for cuDNN");
            }
        }
    }

    private static void requireScale(float scale) {
        if (!Float.isFinite(scale) || scale <= 0) {
            throw new IllegalArgumentException("scale must be finite and positive, got " + scale);
        }
    }

    static DataType cudnnType(DType dtype) {
        return switch (dtype) {
            case BF16 -> DataType.BFLOAT16;
            case F16 -> DataType.HALF;
            case F32 -> DataType.FLOAT;
        };
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("cuDNN attention kernel is closed");
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            plans.values().forEach(calls::destroy);
            plans.clear();
            scratch.close();
        } finally {
            calls.destroy(cudnn);
        }
        LOG.debug("cuDNN attention kernel closed after {} plan builds", planBuilds);
    }
}
