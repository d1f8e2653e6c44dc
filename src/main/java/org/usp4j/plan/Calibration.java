package org.usp4j.plan;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntFunction;
import org.usp4j.api.Mesh;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.bench.AttentionFlops;
import org.usp4j.bench.AttentionProblem;
import org.usp4j.bench.Timings;
import org.usp4j.comm.local.LocalTransport;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Measures a {@link CostProfile} on this machine's backend. Each constant comes from a straight-line
 * fit of two measurements (median of {@code repeats} after one warm-up): time = fixed + amount / rate.
 * <ul>
 *   <li>attention: one rank ({@link AttentionEngine} on a 1 x 1 mesh) at two sequence lengths, forward and
 *       backward: FLOPs over unmasked pairs per second, and the fixed cost of a kernel call;</li>
 *   <li>all-to-all and ring step: two in-process ranks of the backend exchanging a small and a large
 *       buffer (a ring step sends to the right and receives from the left): bytes one rank sends per
 *       second, and the latency of a call.</li>
 * </ul>
 * In-process ranks share the machine, so the transfers are what that world does (shared memory on the
 * CPU, device copies on one GPU), not a network; a profile measured across real links can be written by hand.
 */
public final class Calibration {

    /** What to measure with; {@code seqs} are the two attention lengths, {@code bytes} the two buffer sizes. */
    public record Settings(PlanShape shape, long[] seqs, long[] bytes, int repeats) {

        public Settings {
            if (seqs.length != 2 || bytes.length != 2 || seqs[0] >= seqs[1] || bytes[0] >= bytes[1]) {
                throw new IllegalArgumentException("calibration needs two increasing lengths and two increasing sizes");
            }
            if (repeats < 1) {
                throw new IllegalArgumentException("repeats must be >= 1, got " + repeats);
            }
            seqs = seqs.clone();
            bytes = bytes.clone();
        }
    }

    private Calibration() {
    }

    /**
     * Measures the profile; {@code backends} makes one backend per rank (closed by this method),
     * {@code memoryPerRank} is what a rank may hold, {@code source} says where (machine, date).
     */
    public static CostProfile measure(String backendName, IntFunction<Backend> backends, Settings settings,
                                      long memoryPerRank, String source) {
        PlanShape shape = settings.shape();
        AttentionOptions options = new AttentionOptions(shape.causal(),
                shape.causal() ? SequenceLayout.ZIGZAG : SequenceLayout.CONTIGUOUS, null);
        double[] fwd = new double[2];
        double[] bwd = new double[2];
        for (int k = 0; k < 2; k++) {
            AttentionProblem problem = new AttentionProblem(1, settings.seqs()[k], shape.heads(), shape.kvHeads(),
                    shape.headDim(), shape.dtype());
            AttentionEngine.Result r;
            try (AttentionEngine engine = AttentionEngine.inProcess(new UspPlan(new Mesh(1, 1), options), backends)) {
                engine.dealRandom(problem.shapes(), problem.dtype(), 0);
                r = engine.measure(1, settings.repeats(), true, i -> { });
            }
            List<Double> f = r.forwardSpans();
            List<Double> b = r.backwardSpans();
            fwd[k] = Timings.median(f);
            bwd[k] = Timings.median(b);
        }
        double[] flopsF = new double[2];
        double[] flopsB = new double[2];
        for (int k = 0; k < 2; k++) {
            flopsF[k] = AttentionFlops.forward(1, shape.heads(), settings.seqs()[k], shape.headDim(), shape.causal());
            flopsB[k] = AttentionFlops.backward(1, shape.heads(), settings.seqs()[k], shape.headDim(), shape.causal());
        }
        Line forward = Line.fit(flopsF, fwd);
        Line backward = Line.fit(flopsB, bwd);
        Line[] transfers = transfers(backends, settings);
        return new CostProfile(backendName, source, forward.rate(), backward.rate(),
                (forward.fixed() + backward.fixed()) / 2, transfers[0].rate(), transfers[0].fixed(),
                transfers[1].rate(), transfers[1].fixed(), memoryPerRank, false);
    }

    /** time = fixed + amount / rate through two points; a negative intercept (noise) becomes 0. */
    record Line(double fixed, double rate) {
        static Line fit(double[] amount, double[] seconds) {
            double slope = (seconds[1] - seconds[0]) / (amount[1] - amount[0]);
            double fixed = seconds[0] - slope * amount[0];
            if (!(slope > 0) || fixed < 0) {
                return new Line(0, amount[1] / seconds[1]); // no usable intercept: the large point's rate
            }
            return new Line(fixed, 1 / slope);
        }
    }

    /** [all-to-all, ring step] lines over two ranks. */
    private static Line[] transfers(IntFunction<Backend> backends, Settings settings) {
        int ranks = 2;
        Backend[] b = new Backend[ranks];
        TensorAllocator[] memory = new TensorAllocator[ranks];
        try {
            for (int r = 0; r < ranks; r++) {
                b[r] = backends.apply(r);
                memory[r] = b[r].newAllocator();
            }
            double[][] seconds = new double[2][2];
            double[][] sent = new double[2][2];
            try (LocalWorld world = new LocalWorld(ranks, LocalWorld.DEFAULT_TIMEOUT.plus(Duration.ofMinutes(1)),
                    r -> LocalTransport.of(b[r]))) {
                for (int k = 0; k < 2; k++) {
                    long elements = settings.bytes()[k] / DType.F32.byteSize();
                    Tensor[] send = new Tensor[ranks];
                    Tensor[] recv = new Tensor[ranks];
                    for (int r = 0; r < ranks; r++) {
                        send[r] = memory[r].allocate(DType.F32, elements);
                        recv[r] = memory[r].allocate(DType.F32, elements);
                    }
                    seconds[0][k] = time(world, settings.repeats(), rank -> {
                        world.communicator(rank).allToAll(send[rank], recv[rank]);
                        b[rank].synchronize();
                    });
                    seconds[1][k] = time(world, settings.repeats(), rank -> {
                        world.communicator(rank).sendRecv(List.of(send[rank]), (rank + 1) % ranks, List.of(recv[rank]),
                                (rank + ranks - 1) % ranks).await();
                        b[rank].synchronize();
                    });
                    sent[0][k] = (double) settings.bytes()[k] * (ranks - 1) / ranks; // the own slot stays
                    sent[1][k] = settings.bytes()[k];
                }
            }
            return new Line[] {Line.fit(sent[0], seconds[0]), Line.fit(sent[1], seconds[1])};
        } finally {
            for (int r = 0; r < ranks; r++) {
                if (memory[r] != null) {
                    memory[r].close();
                }
                if (b[r] != null) {
                    b[r].close();
                }
            }
        }
    }

    private interface RankOp {
        void run(int rank);
    }

    /** Median wall time of one operation on every rank, after one warm-up. */
    private static double time(LocalWorld world, int repeats, RankOp op) {
        List<Double> times = new ArrayList<>();
        for (int i = 0; i <= repeats; i++) {
            long t0 = System.nanoTime();
            world.run((rank, comm) -> {
                op.run(rank);
                return null;
            });
            if (i > 0) {
                times.add((System.nanoTime() - t0) * 1e-9);
            }
        }
        return Timings.median(times);
    }

    /** Total physical memory from /proc/meminfo (what one CPU rank may use), or empty off Linux. */
    public static java.util.OptionalLong hostMemoryBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    return java.util.OptionalLong.of(Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024);
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux, or an unexpected format: the caller says what it uses instead
        }
        return java.util.OptionalLong.empty();
    }
}
