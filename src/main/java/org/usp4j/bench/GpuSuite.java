package org.usp4j.bench;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.api.Mesh;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.cuda.Cuda;
import org.usp4j.cuda.CudaEvent;
import org.usp4j.cudnn.Cudnn;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.gpu.CudaBackend;
import org.usp4j.gpu.sdpa.CudnnBackends;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.Mask;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The GPU benchmark rows that {@code jmh/gpu/summarize.py} sets beside PyTorch's cuDNN SDPA
 * ({@code jmh/gpu/torch_sdpa.py}, same shapes, same machine, same run):
 * <ul>
 *   <li>{@code usp4j-cudnn}: one cuDNN SDPA call on the whole sequence through usp4j's kernel (bf16,
 *       b = 1, h = 16), forward and backward, timed with CUDA events on the backend's stream: the median
 *       of {@code reps} calls after {@code warmup}, rotating over several input sets as the PyTorch
 *       script does so that no call reads inputs still in L2;</li>
 *   <li>{@code usp4j-usp}: USP over P in-process device ranks on the same GPU, on every mesh of the
 *       issue's target (U x R = 1x4, 2x2, 4x1, 1x8, 2x4, 8x1 at 64K tokens), timed with {@link AttentionEngine#measure};
 *       summarize.py sets each against one SDPA call over the whole sequence.</li>
 * </ul>
 * Rows are emitted as soon as they are measured, so a run cut short still leaves its rows.
 */
public final class GpuSuite {

    private static final Logger LOG = LogManager.getLogger(GpuSuite.class);

    /** What to measure. */
    public record Config(List<Long> seqs, List<Long> headDims, long heads, int warmup, int reps, int sets,
                         long uspSeq, List<Mesh> uspMeshes, List<Long> uspHeadDims, int uspReps) {

        /**
         * The shapes of jmh/gpu/torch_sdpa.py: 4K..64K tokens, head_dim 64 and 128, h = 16; USP at 64K on P = 4
         * and 8 ranks, every mesh, head_dim 64 (what fits the suite's one device call).
         */
        public static Config standard() {
            return new Config(List.of(4096L, 8192L, 16384L, 32768L, 65536L), List.of(64L, 128L), 16, 3, 10, 3,
                    65536, List.of(new Mesh(1, 4), new Mesh(2, 2), new Mesh(4, 1), new Mesh(1, 8), new Mesh(2, 4),
                            new Mesh(8, 1)), List.of(64L), 5);
        }
    }

    private GpuSuite() {
    }

    /** Runs the suite on device 0, passing each row (a JSON object's fields) to {@code emit}. */
    public static void run(Config config, Consumer<Map<String, Object>> emit) {
        Map<String, Object> meta = new LinkedHashMap<>();
        meta.put("impl", "usp4j");
        meta.put("cudnn", Cudnn.version().toString());
        meta.put("cuda_runtime", Cuda.library().version().toString());
        meta.put("device", Cuda.deviceProperties(0).name());
        emit.accept(meta);
        try (CudaBackend backend = CudnnBackends.create(0)) {
            for (long d : config.headDims()) {
                kernelRows(backend, config, d, emit);
            }
        }
        for (long d : config.uspHeadDims()) {
            for (boolean causal : new boolean[] {true, false}) {
                for (Mesh mesh : config.uspMeshes()) {
                    uspRows(config, mesh, d, causal, emit);
                }
            }
        }
    }

    /** Single-call SDPA rows for one head_dim, every sequence length, non-causal and causal. */
    private static void kernelRows(CudaBackend backend, Config config, long d, Consumer<Map<String, Object>> emit) {
        long h = config.heads();
        long maxSeq = config.seqs().stream().mapToLong(Long::longValue).max().orElseThrow();
        float scale = (float) (1 / Math.sqrt(d));
        AttentionKernel kernel = backend.kernel();
        try (TensorAllocator memory = backend.newAllocator()) {
            List<Tensor[]> sets = new ArrayList<>(); // q, k, v, dout, out, lse, dq, dk, dv at the longest sequence
            try (Arena host = Arena.ofConfined()) {
                Tensor a = Tensor.allocate(host, DType.BF16, 1, maxSeq, h, d);
                Tensor b = Tensor.allocate(host, DType.BF16, 1, maxSeq, h, d);
                for (int s = 0; s < config.sets(); s++) {
                    HostTensors.fillNormal(a, 2L * s);
                    HostTensors.fillNormal(b, 2L * s + 1);
                    Tensor[] set = new Tensor[9];
                    for (int i = 0; i < set.length; i++) {
                        set[i] = i == 5 ? memory.allocate(DType.F32, 1, h, maxSeq)
                                : memory.allocate(DType.BF16, 1, maxSeq, h, d);
                    }
                    backend.copy(a, set[0]);
                    backend.copy(b, set[1]);
                    backend.copy(a, set[2]);
                    backend.copy(b, set[3]);
                    sets.add(set);
                }
                backend.synchronize(); // before the host tensors are freed
            }
            for (long seq : config.seqs()) {
                for (boolean causal : new boolean[] {false, true}) {
                    Mask mask = causal ? Mask.CAUSAL : Mask.NONE;
                    List<Tensor[]> views = new ArrayList<>();
                    for (Tensor[] set : sets) {
                        views.add(prefix(set, seq));
                    }
                    double fwd = medianMillis(backend, config.warmup(), config.reps(), i -> {
                        Tensor[] t = views.get(i % views.size());
                        kernel.forward(t[0], t[1], t[2], mask, scale, t[4], t[5]);
                    });
                    emit.accept(row("usp4j-cudnn", null, Pass.FORWARD, seq, h, d, causal, fwd));
                    double bwd = medianMillis(backend, config.warmup(), config.reps(), i -> {
                        Tensor[] t = views.get(i % views.size());
                        kernel.backward(t[0], t[1], t[2], t[4], t[3], t[5], mask, scale, t[6], t[7], t[8], false);
                    });
                    emit.accept(row("usp4j-cudnn", null, Pass.BACKWARD, seq, h, d, causal, bwd));
                }
            }
        }
    }

    /** How long an in-process rank of a benchmark waits for its peers (long calls on big shapes). */
    public static final Duration BENCH_TIMEOUT = LocalWorld.DEFAULT_TIMEOUT.plus(Duration.ofMinutes(4));

    /** USP rows at the suite's USP sequence length on one mesh (zigzag when causal). */
    private static void uspRows(Config config, Mesh uspMesh, long d, boolean causal, Consumer<Map<String, Object>> emit) {
        AttentionProblem problem = new AttentionProblem(1, config.uspSeq(), config.heads(), config.heads(), d,
                DType.BF16);
        AttentionOptions options = new AttentionOptions(causal,
                causal ? SequenceLayout.ZIGZAG : SequenceLayout.CONTIGUOUS, null);
        try (AttentionEngine usp = AttentionEngine.inProcess(new UspPlan(uspMesh, options),
                rank -> CudnnBackends.create(0), BENCH_TIMEOUT)) {
            usp.dealRandom(problem.shapes(), problem.dtype(), 7);
            // The first pair builds the plans.
            AttentionEngine.Result m = usp.measure(1, config.uspReps(), true, call -> { });
            List<Double> fwd = m.forwardSpans();
            List<Double> bwd = m.backwardSpans();
            String mesh = meshName(uspMesh);
            emit.accept(row("usp4j-usp", mesh, Pass.FORWARD, problem.seq(), problem.heads(), d, causal, 1e3 * Timings.median(fwd)));
            emit.accept(row("usp4j-usp", mesh, Pass.BACKWARD, problem.seq(), problem.heads(), d, causal, 1e3 * Timings.median(bwd)));
        } catch (RuntimeException e) {
            LOG.warn("USP {} at d={} causal={} failed: {}", meshName(uspMesh), d, causal, e.toString());
            Map<String, Object> failed = new LinkedHashMap<>();
            failed.put("impl", "usp4j-usp");
            failed.put("mesh", meshName(uspMesh));
            failed.put("seq", config.uspSeq());
            failed.put("head_dim", d);
            failed.put("causal", causal);
            failed.put("error", e.toString());
            emit.accept(failed);
        }
    }

    /** U x R, as the rows and the targets name meshes. */
    static String meshName(Mesh mesh) {
        return mesh.ulysses() + "x" + mesh.ring();
    }

    /** One benchmark row as summarize.py reads it; TFLOP/s over unmasked pairs. */
    static Map<String, Object> row(String impl, String mesh, Pass pass, long seq, long heads, long d, boolean causal,
                                   double ms) {
        Map<String, Object> r = new LinkedHashMap<>();
        r.put("impl", impl);
        if (mesh != null) {
            r.put("mesh", mesh);
        }
        r.put("pass", pass.label());
        r.put("seq", seq);
        r.put("heads", heads);
        r.put("head_dim", d);
        r.put("causal", causal);
        r.put("ms", ms);
        r.put("tflops", AttentionFlops.of(pass, 1, heads, seq, d, causal) / (ms * 1e-3) * 1e-12);
        return r;
    }

    private interface Call {
        void run(int index);
    }

    /** Median milliseconds of {@code reps} calls, each between two CUDA events on the backend's stream. */
    private static double medianMillis(CudaBackend backend, int warmup, int reps, Call call) {
        for (int i = 0; i < warmup; i++) {
            call.run(i);
        }
        backend.synchronize();
        List<Double> times = new ArrayList<>();
        try (CudaEvent start = CudaEvent.create(true); CudaEvent end = CudaEvent.create(true)) {
            for (int i = 0; i < reps; i++) {
                start.record(backend.stream());
                call.run(i);
                end.record(backend.stream());
                end.synchronize();
                times.add((double) CudaEvent.elapsedMillis(start, end));
            }
        }
        return Timings.median(times);
    }


    /** The set's tensors cut to {@code seq} positions: contiguous tensors over the start of each buffer. */
    private static Tensor[] prefix(Tensor[] set, long seq) {
        Tensor[] views = new Tensor[set.length];
        for (int i = 0; i < set.length; i++) {
            Tensor t = set[i];
            long[] shape = t.shape().clone();
            if (i == 5) {
                shape[2] = seq; // lse [1, h, S]
            } else {
                shape[1] = seq;
            }
            long bytes = Tensor.numel(shape) * t.dtype().byteSize();
            views[i] = Tensor.device(t.devicePointer().slice(0, bytes), t.dtype(), shape);
        }
        return views;
    }
}
