package org.usp4j.cpu;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.condition.EnabledIfSystemProperty;
import org.usp4j.kernel.Mask;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Throughput of the CPU kernel as a fraction of the measured FMA peak. Not a CI test (it takes minutes):
 * run it with {@code mvn test -Dtest=CpuAttentionKernelBenchmark -Dusp4j.bench=true}, or its main.
 * Optional properties: usp4j.bench.seq (comma list, default 1024,4096), usp4j.bench.dims (64,128),
 * usp4j.bench.heads (16), usp4j.bench.types (F32,BF16), usp4j.bench.masks (NONE,CAUSAL),
 * usp4j.bench.backward (true).
 *
 * <p>FLOPs count the two matmuls of the forward, 4 b h s_q s_kv d, over unmasked pairs only, and 2.5x
 * that for the backward; each figure is the best of several timed calls after a warm-up call, and the
 * fraction is of the higher of two FMA peak measurements (before and after the runs).
 */
class CpuAttentionKernelBenchmark {

    @Test
    @EnabledIfSystemProperty(named = "usp4j.bench", matches = "true")
    void throughputTable() {
        main(new String[0]);
    }

    public static void main(String[] args) {
        int[] seqs = ints(System.getProperty("usp4j.bench.seq", "1024,4096"));
        int[] dims = ints(System.getProperty("usp4j.bench.dims", "64,128"));
        int heads = Integer.getInteger("usp4j.bench.heads", 16);
        String[] types = System.getProperty("usp4j.bench.types", "F32,BF16").split(",");
        String[] masks = System.getProperty("usp4j.bench.masks", "NONE,CAUSAL").split(",");
        boolean backward = Boolean.parseBoolean(System.getProperty("usp4j.bench.backward", "true"));

        CpuAttentionKernel kernel = new CpuAttentionKernel();
        double peakBefore = FmaPeak.measure();
        List<Row> rows = new ArrayList<>();
        for (int d : dims) {
            for (int s : seqs) {
                for (String type : types) {
                    for (String maskName : masks) {
                        Mask mask = "CAUSAL".equals(maskName) ? Mask.CAUSAL : Mask.NONE;
                        run(kernel, rows, DType.valueOf(type), mask, 1, s, heads, d, backward);
                    }
                }
            }
        }
        // On a shared machine a neighbour slows some measurements down, never speeds them up: the peak
        // is measured before and after the runs and the higher figure is the denominator.
        double peakAfter = FmaPeak.measure();
        double peak = Math.max(peakBefore, peakAfter);
        System.out.printf(Locale.ROOT, "FMA peak: %.1f GFLOP/s on %d threads, %d-lane vectors (%.1f before the"
                + " runs, %.1f after)%n", peak, kernel.parallelism(), TileGemm.LANES, peakBefore, peakAfter);
        System.out.println("pass      dtype mask    b   s_q    h    d    ms/call  GFLOP/s  of peak");
        for (Row r : rows) {
            double gflops = r.flops / r.seconds * 1e-9;
            System.out.printf(Locale.ROOT, "%-9s %-5s %-6s %2d %5d %4d %4d %10.1f %8.1f %8.2f%n", r.pass, r.type,
                    r.mask, r.batch, r.seq, r.heads, r.headDim, r.seconds * 1e3, gflops, gflops / peak);
        }
    }

    /** One measured call: best seconds for a known FLOP count. */
    private record Row(String pass, DType type, Mask mask, int batch, int seq, int heads, int headDim, double seconds,
                       double flops) {
    }

    private static void run(CpuAttentionKernel kernel, List<Row> rows, DType type, Mask mask, int b, int s, int h,
                            int d, boolean backward) {
        try (Arena arena = Arena.ofShared()) {
            Tensor q = Tensor.allocate(arena, type, b, s, h, d);
            Tensor k = Tensor.allocate(arena, type, b, s, h, d);
            Tensor v = Tensor.allocate(arena, type, b, s, h, d);
            Tensor out = Tensor.allocate(arena, type, b, s, h, d);
            Tensor lse = Tensor.allocate(arena, DType.F32, b, h, s);
            HostTensors.fillNormal(q, 1);
            HostTensors.fillNormal(k, 2);
            HostTensors.fillNormal(v, 3);
            float scale = (float) (1 / Math.sqrt(d));
            double pairs = mask == Mask.CAUSAL ? s * (s + 1.0) / 2 : (double) s * s;
            double forwardFlops = 4.0 * b * h * pairs * d;

            double fwd = bestSeconds(() -> kernel.forward(q, k, v, mask, scale, out, lse));
            rows.add(new Row("forward", type, mask, b, s, h, d, fwd, forwardFlops));
            if (backward) {
                Tensor dout = Tensor.allocate(arena, type, b, s, h, d);
                HostTensors.fillNormal(dout, 4);
                Tensor dq = Tensor.allocate(arena, type, b, s, h, d);
                Tensor dk = Tensor.allocate(arena, type, b, s, h, d);
                Tensor dv = Tensor.allocate(arena, type, b, s, h, d);
                double bwd = bestSeconds(() -> kernel.backward(q, k, v, out, dout, lse, mask, scale, dq, dk, dv, false));
                rows.add(new Row("backward", type, mask, b, s, h, d, bwd, 2.5 * forwardFlops));
            }
        }
    }

    /** Best time of at least 3 calls and about 3 seconds, after one warm-up call. */
    private static double bestSeconds(Runnable call) {
        call.run();
        double best = Double.MAX_VALUE;
        long start = System.nanoTime();
        for (int i = 0; i < 3 || System.nanoTime() - start < 3_000_000_000L; i++) {
            long t0 = System.nanoTime();
            call.run();
            best = Math.min(best, (System.nanoTime() - t0) * 1e-9);
            if (i >= 20) {
                break;
            }
        }
        return best;
    }

    private static int[] ints(String list) {
        String[] parts = list.split(",");
        int[] values = new int[parts.length];
        for (int i = 0; i < parts.length; i++) {
            values[i] = Integer.parseInt(parts[i].trim());
        }
        return values;
    }
}
