package org.usp4j.jmh;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;
import org.usp4j.bench.AttentionFlops;
import org.usp4j.cpu.FmaPeak;

/**
 * Reads JMH's JSON results ({@code -rf json}) and prints the short Markdown tables of jmh/run: downcall
 * cost by route, the CPU kernel as GFLOP/s and as a fraction of the FMA peak measured in the same run,
 * the host overhead per USP call, and the in-process communicator against a memory copy.
 * Usage: {@code ResultTable RESULTS.json [JAVACPP_NOTE]}.
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
            System.err.println("usage: ResultTable RESULTS.json [note on JavaCPP]");
            System.exit(2);
        }
        List<Result> results = read(Path.of(args[0]));
        String javaCppNote = args.length > 1 ? args[1] : "";
        System.out.println(machine());
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

    private static String machine() {
        String cpu = "unknown CPU";
        try {
            cpu = Files.readAllLines(Path.of("/proc/cpuinfo")).stream().filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).strip()).findFirst().orElse(cpu);
        } catch (IOException | RuntimeException e) {
            // keep "unknown CPU"
        }
        return String.format(Locale.ROOT, "Machine: %s, %d processors; JDK %s (%s)", cpu,
                Runtime.getRuntime().availableProcessors(), Runtime.version(), System.getProperty("java.vendor"));
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
        System.out.println("Downcall cost, ns per call (JMH average time, +- 99.9% error):");
        System.out.println();
        System.out.println("| function | FFM binding | FFM wrapper | JNI shim | JavaCPP (JNI) | binding / JNI shim | binding / JavaCPP |");
        System.out.println("|---|---|---|---|---|---|---|");
        for (String f : new String[] {"NcclGetVersion", "CudnnGetVersion", "CudaRuntimeGetVersion"}) {
            Optional<Result> binding = method(ffm, "ffmBinding" + f);
            Optional<Result> wrapper = method(ffm, "ffmWrapper" + f);
            Optional<Result> jni = method(ffm, "jniShim" + f);
            Optional<Result> javacpp = method(jcpp, "javaCpp" + f);
            String ratio = binding.isPresent() && jni.isPresent()
                    ? String.format(Locale.ROOT, "%.2f", binding.get().score() / jni.get().score()) : "-";
            String ratioJavaCpp = binding.isPresent() && javacpp.isPresent()
                    ? String.format(Locale.ROOT, "%.2f", binding.get().score() / javacpp.get().score()) : "-";
            System.out.printf(Locale.ROOT, "| %s | %s | %s | %s | %s | %s | %s |%n",
                    Character.toLowerCase(f.charAt(0)) + f.substring(1), ns(binding), ns(wrapper), ns(jni),
                    javacpp.isPresent() ? ns(javacpp) : "skipped", ratio, ratioJavaCpp);
        }
        if (!javaCppNote.isBlank()) {
            System.out.println();
            System.out.println("JavaCPP: " + javaCppNote);
        }
        System.out.println();
    }

    private static String ns(Optional<Result> r) {
        return r.map(x -> String.format(Locale.ROOT, "%.1f +- %.1f", x.score(), x.error())).orElse("-");
    }

    /** Prints the kernel table; returns the FMA peak in GFLOP/s (0 when absent). */
    private static double kernel(List<Result> all) {
        Optional<Result> fma = of(all, "FmaPeakBenchmark").stream().findFirst();
        double peak = fma.map(r -> r.score() * FmaPeakBenchmark.TRIPS * FmaPeak.flopsPerTrip() * 1e-9).orElse(0.0);
        List<Result> kernel = of(all, "CpuKernelBenchmark");
        if (fma.isPresent()) {
            System.out.printf(Locale.ROOT, "FMA peak (FmaPeak's loop on %d threads): %.1f GFLOP/s%n%n",
                    Runtime.getRuntime().availableProcessors(), peak);
        }
        if (kernel.isEmpty()) {
            return peak;
        }
        System.out.println("CPU attention kernel, b=1 h=" + CpuKernelBenchmark.HEADS
                + " (GFLOP/s over unmasked pairs; fraction of the FMA peak above):");
        System.out.println();
        System.out.println("| pass | dtype | causal | seq | head_dim | ms/call | GFLOP/s | of peak |");
        System.out.println("|---|---|---|---|---|---|---|---|");
        for (Result r : kernel) {
            long seq = Long.parseLong(r.param("seq"));
            long d = Long.parseLong(r.param("headDim"));
            boolean causal = Boolean.parseBoolean(r.param("causal"));
            double flops = r.method().equals("forward") ? AttentionFlops.forward(1, CpuKernelBenchmark.HEADS, seq, d, causal)
                    : AttentionFlops.backward(1, CpuKernelBenchmark.HEADS, seq, d, causal);
            double gflops = flops / (r.score() * 1e-3) * 1e-9;
            System.out.printf(Locale.ROOT, "| %s | %s | %s | %d | %d | %.1f | %.1f | %s |%n", r.method(),
                    r.param("dtype").toLowerCase(Locale.ROOT), causal, seq, d, r.score(), gflops,
                    peak > 0 ? String.format(Locale.ROOT, "%.2f", gflops / peak) : "-");
        }
        System.out.println();
        return peak;
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
        Map<String, Double> copyGbs = new LinkedHashMap<>();
        for (Result r : rows) {
            if (r.method().equals("memoryCopy")) {
                copyGbs.put(r.param("bytes"), Double.parseDouble(r.param("bytes")) / (r.score() * 1e-6) * 1e-9);
            }
        }
        System.out.println("In-process communicator vs a one-thread memory copy (GB/s of payload sent; the ranks"
                + " are threads sharing the cores):");
        System.out.println();
        System.out.println("| operation | ranks | MiB per rank | us/op | GB/s per rank | GB/s all ranks | all ranks vs copy |");
        System.out.println("|---|---|---|---|---|---|---|");
        for (Result r : rows) {
            double bytes = Double.parseDouble(r.param("bytes"));
            int ranks = r.param("ranks").isEmpty() ? 1 : Integer.parseInt(r.param("ranks"));
            // all-to-all: a rank sends (P-1)/P of its buffer; a ring step: all of it; a copy: all of it
            double moved = r.method().equals("allToAll") ? bytes * (ranks - 1) / ranks : bytes;
            double gbs = moved / (r.score() * 1e-6) * 1e-9;
            Double copy = copyGbs.get(r.param("bytes"));
            System.out.printf(Locale.ROOT, "| %s | %s | %.0f | %.1f | %.2f | %.2f | %s |%n", r.method(),
                    r.param("ranks").isEmpty() ? "-" : r.param("ranks"), bytes / (1 << 20), r.score(), gbs, gbs * ranks,
                    copy != null ? String.format(Locale.ROOT, "%.2f", gbs * ranks / copy) : "-");
        }
        System.out.println();
    }
}
