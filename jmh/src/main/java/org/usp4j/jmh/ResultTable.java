package org.usp4j.jmh;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import java.util.TreeMap;
import jdk.incubator.vector.FloatVector;
import org.usp4j.bench.AttentionFlops;
import org.usp4j.cpu.FmaPeak;

/**
 * Reads JMH's JSON results ({@code -rf json}) and prints the short Markdown tables of jmh/run: downcall
 * cost by route, the CPU kernel as GFLOP/s and as a fraction of the FMA peak measured in the same run,
 * the host overhead per USP call, and the in-process communicator against a memory copy.
 * Usage: {@code ResultTable RESULTS.json [JAVACPP_NOTE [LOAD_NOTE]]}.
 */
public final class ResultTable {

    /** One benchmark result: its method, parameters, score and error. */
    record Result(String benchmark, String method, Map<String, String> params, double score, double error, String unit) {

        String param(String name) {
            return params.getOrDefault(name, "");
        }
    }

    private ResultTable() {
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 1) {
            System.err.println("usage: ResultTable RESULTS.json [note on JavaCPP [note on the machine's load]]");
            System.exit(2);
        }
        List<Result> results = read(Path.of(args[0]));
        String javaCppNote = args.length > 1 ? args[1] : "";
        System.out.println(machine());
        if (args.length > 2 && !args[2].isBlank()) {
            System.out.println();
            System.out.println(args[2]);
        }
        System.out.println();
        downcalls(results, javaCppNote);
        double peak = kernel(results);
        overhead(results);
        bandwidth(results);
        if (peak <= 0) {
            System.out.println("(no FMA peak in these results)");
        }
    }

    static List<Result> read(Path file) throws IOException {
        JsonNode root = new ObjectMapper().readTree(Files.readString(file));
        List<Result> list = new ArrayList<>();
        for (JsonNode n : root) {
            String benchmark = n.get("benchmark").asText();
            Map<String, String> params = new LinkedHashMap<>();
            JsonNode p = n.get("params");
            if (p != null) {
                p.fields().forEachRemaining(e -> params.put(e.getKey(), e.getValue().asText()));
            }
            JsonNode m = n.get("primaryMetric");
            double error = m.get("scoreError").isNumber() ? m.get("scoreError").asDouble() : Double.NaN;
            list.add(new Result(benchmark.substring(0, benchmark.lastIndexOf('.')),
                    benchmark.substring(benchmark.lastIndexOf('.') + 1), params, m.get("score").asDouble(), error,
                    m.get("scoreUnit").asText()));
        }
        return list;
    }

    /**
     * The machine line: the CPU as lscpu names it (model name, family/model), its processors and widest
     * float vector, the JDK and the date, so that a table can never be taken for another machine's.
     */
    private static String machine() {
        String cpu = "unknown CPU";
        String family = "?";
        String model = "?";
        boolean avx512 = false;
        try {
            List<String> lines = Files.readAllLines(Path.of("/proc/cpuinfo"));
            cpu = field(lines, "model name").orElse(cpu);
            family = field(lines, "cpu family").orElse(family);
            model = field(lines, "model").orElse(model);
            avx512 = field(lines, "flags").map(f -> (" " + f + " ").contains(" avx512f ")).orElse(false);
        } catch (IOException | RuntimeException e) {
            // keep the unknowns
        }
        return String.format(Locale.ROOT, "Machine: %s (family %s, model %s), %d processors, %d-bit float vectors%s;"
                        + " JDK %s (%s); %s", cpu, family, model, Runtime.getRuntime().availableProcessors(),
                widestVectorBits(), avx512 ? " (AVX-512)" : "", Runtime.version(), System.getProperty("java.vendor"),
                LocalDate.now());
    }

    private static Optional<String> field(List<String> cpuinfo, String name) {
        return cpuinfo.stream().filter(l -> l.startsWith(name) && l.substring(0, l.indexOf(':')).strip().equals(name))
                .map(l -> l.substring(l.indexOf(':') + 1).strip()).findFirst();
    }

    private static int widestVectorBits() {
        return FloatVector.SPECIES_PREFERRED.vectorBitSize();
    }

    /** A vectorBits parameter as bits: "max" is this machine's widest. */
    private static int vectorBits(Result r) {
        String bits = r.param("vectorBits");
        return bits.isEmpty() || bits.equals(VectorBits.MAX) ? widestVectorBits() : Integer.parseInt(bits);
    }

    private static List<Result> of(List<Result> results, String simpleClass) {
        return results.stream().filter(r -> r.benchmark().endsWith("." + simpleClass)).toList();
    }

    private static Optional<Result> method(List<Result> results, String method) {
        return results.stream().filter(r -> r.method().equals(method)).findFirst();
    }

    private static void downcalls(List<Result> all, String javaCppNote) {
        List<Result> ffm = of(all, "DowncallBenchmark");
        List<Result> jcpp = of(all, "JavaCppDowncallBenchmark");
        if (ffm.isEmpty() && jcpp.isEmpty()) {
            return;
        }
        System.out.println("Downcall cost, ns per call (JMH average time, +- 99.9% error; FFM binding: the generated"
                + " jextract handle; FFM wrapper: usp4j's call, a critical handle with its status check):");
        System.out.println();
        System.out.println("| function | FFM binding | FFM wrapper | JNI shim | JavaCPP (JNI) | wrapper / JNI shim | binding / JNI shim | wrapper / JavaCPP |");
        System.out.println("|---|---|---|---|---|---|---|---|");
        for (String f : new String[] {"NcclGetVersion", "CudnnGetVersion", "CudaRuntimeGetVersion"}) {
            Optional<Result> binding = method(ffm, "ffmBinding" + f);
            Optional<Result> wrapper = method(ffm, "ffmWrapper" + f);
            Optional<Result> jni = method(ffm, "jniShim" + f);
            Optional<Result> javacpp = method(jcpp, "javaCpp" + f);
            System.out.printf(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s | %s |%n",
                    Character.toLowerCase(f.charAt(0)) + f.substring(1), ns(binding), ns(wrapper), ns(jni),
                    javacpp.isPresent() ? ns(javacpp) : "skipped", ratio(wrapper, jni), ratio(binding, jni),
                    ratio(wrapper, javacpp));
        }
        if (!javaCppNote.isBlank()) {
            System.out.println();
            System.out.println("JavaCPP: " + javaCppNote);
        }
        System.out.println();
    }

    private static String ratio(Optional<Result> a, Optional<Result> b) {
        return a.isPresent() && b.isPresent() ? String.format(Locale.ROOT, "%.2f", a.get().score() / b.get().score())
                : "-";
    }

    private static String ns(Optional<Result> r) {
        return r.map(x -> String.format(Locale.ROOT, "%.1f +- %.1f", x.score(), x.error())).orElse("-");
    }

    /** Prints the kernel table; returns the highest FMA peak in GFLOP/s (0 when absent). */
    private static double kernel(List<Result> all) {
        Map<Integer, Double> peaks = new TreeMap<>(Comparator.reverseOrder());
        for (Result r : of(all, "FmaPeakBenchmark")) {
            int bits = vectorBits(r);
            peaks.put(bits, r.score() * FmaPeakBenchmark.TRIPS * FmaPeak.flopsPerTrip(bits) * 1e-9);
        }
        int threads = Runtime.getRuntime().availableProcessors();
        if (!peaks.isEmpty()) {
            StringBuilder line = new StringBuilder("FMA peak (FmaPeak's loop on " + threads + " threads):");
            peaks.forEach((bits, peak) -> line.append(String.format(Locale.ROOT, " %d-bit %.1f GFLOP/s;", bits, peak)));
            System.out.println(line.substring(0, line.length() - 1));
            System.out.println();
        }
        List<Result> kernel = of(all, "CpuKernelBenchmark");
        if (kernel.isEmpty()) {
            return peaks.values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
        }
        System.out.println("CPU attention kernel on " + threads + " threads, b=1 h=" + CpuKernelBenchmark.HEADS
                + " (GFLOP/s over unmasked pairs; fraction of the FMA peak of the same vector width):");
        System.out.println();
        System.out.println("| pass | dtype | causal | seq | head_dim | vector bits | ms/call | GFLOP/s | of peak |");
        System.out.println("|---|---|---|---|---|---|---|---|---|");
        for (Result r : kernel) {
            long seq = Long.parseLong(r.param("seq"));
            long d = Long.parseLong(r.param("headDim"));
            boolean causal = Boolean.parseBoolean(r.param("causal"));
            int bits = vectorBits(r);
            double flops = r.method().equals("forward") ? AttentionFlops.forward(1, CpuKernelBenchmark.HEADS, seq, d, causal)
                    : AttentionFlops.backward(1, CpuKernelBenchmark.HEADS, seq, d, causal);
            double gflops = flops / (r.score() * 1e-3) * 1e-9;
            Double peak = peaks.get(bits);
            System.out.printf(Locale.ROOT, "| %s | %s | %s | %d | %d | %d | %.1f +- %.1f | %.1f | %s |%n", r.method(),
                    r.param("dtype").toLowerCase(Locale.ROOT), causal, seq, d, bits, r.score(), r.error(), gflops,
                    peak != null ? String.format(Locale.ROOT, "%.2f", gflops / peak) : "-");
        }
        System.out.println();
        return peaks.values().stream().mapToDouble(Double::doubleValue).max().orElse(0);
    }

    private static void overhead(List<Result> all) {
        List<Result> rows = of(all, "HostOverheadBenchmark");
        if (rows.isEmpty()) {
            return;
        }
        System.out.println("Host overhead per USP call on one rank of P=8, no-op kernel and transport (us; target"
                + " < 50 for the forward):");
        System.out.println();
        System.out.println("| mesh (U x R) | forward us | forward + backward us |");
        System.out.println("|---|---|---|");
        Map<String, double[]> byMesh = new LinkedHashMap<>();
        for (Result r : rows) {
            double[] v = byMesh.computeIfAbsent(r.param("mesh"), k -> new double[] {Double.NaN, Double.NaN});
            v[r.method().equals("forward") ? 0 : 1] = r.score();
        }
        byMesh.forEach((mesh, v) -> System.out.printf(Locale.ROOT, "| %s | %.1f | %.1f |%n", mesh, v[0], v[1]));
        System.out.println();
    }

    private static void bandwidth(List<Result> all) {
        List<Result> rows = of(all, "CommBandwidthBenchmark");
        if (rows.isEmpty()) {
            return;
        }
        // The memcpy each exchange is compared with: the same rank threads, started and awaited the same
        // way, each copying its own buffer of the same size.
        Map<String, Double> rankCopyUs = new LinkedHashMap<>();
        for (Result r : rows) {
            if (r.method().equals("rankCopy")) {
                rankCopyUs.put(r.param("ranks") + "/" + r.param("bytes"), r.score());
            }
        }
        System.out.println("In-process communicator vs memcpy (ranks are threads sharing the "
                + Runtime.getRuntime().availableProcessors() + " processors; GB/s of payload sent; rankCopy: every"
                + " rank thread copies its own buffer of the same size, run the same way; memoryCopy: one thread):");
        System.out.println();
        System.out.println("| operation | threads | MiB per rank | us/op | GB/s per rank | GB/s all ranks | rankCopy time / this |");
        System.out.println("|---|---|---|---|---|---|---|");
        for (Result r : rows) {
            double bytes = Double.parseDouble(r.param("bytes"));
            int ranks = r.param("ranks").isEmpty() ? 1 : Integer.parseInt(r.param("ranks"));
            // all-to-all: a rank sends (P-1)/P of its buffer; a ring step and a copy: all of it
            double moved = r.method().equals("allToAll") ? bytes * (ranks - 1) / ranks : bytes;
            double gbs = moved / (r.score() * 1e-6) * 1e-9;
            Double copy = r.method().equals("rankCopy") || r.method().equals("memoryCopy") ? null
                    : rankCopyUs.get(r.param("ranks") + "/" + r.param("bytes"));
            System.out.printf(Locale.ROOT, "| %s | %d | %.0f | %.1f +- %.1f | %.2f | %.2f | %s |%n", r.method(), ranks,
                    bytes / (1 << 20), r.score(), r.error(), gbs, gbs * ranks,
                    copy != null ? String.format(Locale.ROOT, "%.2f", copy / r.score()) : "-");
        }
        System.out.println();
    }
}
