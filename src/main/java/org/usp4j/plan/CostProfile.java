package org.usp4j.plan;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Objects;

/**
 * The measured constants of the planner's cost model for one backend, per rank: attention throughput
 * (forward and backward, FLOPs over unmasked pairs per second), the fixed cost of one kernel call, the
 * bandwidth and per-call latency of an all-to-all and of a ring step, and the memory a rank may use.
 * Made by {@link Calibration} ({@code usp4j plan --calibrate}), kept as a small JSON file; {@code source}
 * says where and when the figures were measured.
 *
 * @param builtIn true for the profile shipped in the jar ({@link #builtInDefault}), not measured on the
 *                machine that plans; never written to a file
 */
public record CostProfile(String backend, String source, double forwardFlopsPerSecond, double backwardFlopsPerSecond,
                          double kernelCallSeconds, double allToAllBytesPerSecond, double allToAllLatencySeconds,
                          double p2pBytesPerSecond, double p2pLatencySeconds, long memoryPerRankBytes, boolean builtIn) {

    private static final ObjectMapper JSON = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();
    private static final String DEFAULT_RESOURCE = "default-profile.json";

    public CostProfile {
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(source, "source");
        positive("forward_flops_per_second", forwardFlopsPerSecond);
        positive("backward_flops_per_second", backwardFlopsPerSecond);
        positive("all_to_all_bytes_per_second", allToAllBytesPerSecond);
        positive("p2p_bytes_per_second", p2pBytesPerSecond);
        nonNegative("kernel_call_seconds", kernelCallSeconds);
        nonNegative("all_to_all_latency_seconds", allToAllLatencySeconds);
        nonNegative("p2p_latency_seconds", p2pLatencySeconds);
        if (memoryPerRankBytes < 1) {
            throw new IllegalArgumentException("memory_per_rank_bytes must be >= 1, got " + memoryPerRankBytes);
        }
    }

    /** The profile shipped in the jar: measured on the machine named in its source, not on this one. */
    public static CostProfile builtInDefault() {
        try (InputStream in = CostProfile.class.getResourceAsStream(DEFAULT_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("the built-in cost profile " + DEFAULT_RESOURCE + " is missing from the jar");
            }
            CostProfile p = fromJson(JSON.readTree(in), DEFAULT_RESOURCE);
            return new CostProfile(p.backend, "built-in default, not measured here (" + p.source + ")",
                    p.forwardFlopsPerSecond, p.backwardFlopsPerSecond, p.kernelCallSeconds, p.allToAllBytesPerSecond,
                    p.allToAllLatencySeconds, p.p2pBytesPerSecond, p.p2pLatencySeconds, p.memoryPerRankBytes, true);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Reads a profile file; a missing or malformed field is an {@link IllegalArgumentException} naming it. */
    public static CostProfile read(Path file) throws IOException {
        JsonNode root;
        try (InputStream in = Files.newInputStream(file)) {
            root = JSON.readTree(in);
        } catch (com.fasterxml.jackson.core.JacksonException e) {
            throw new IllegalArgumentException("profile " + file + " is not JSON: " + e.getOriginalMessage());
        }
        return fromJson(root, file.toString());
    }

    /** Writes this profile as JSON, atomically (a temporary file beside it, then a move). */
    public void write(Path file) throws IOException {
        Path dir = file.toAbsolutePath().getParent();
        Path tmp = Files.createTempFile(dir, file.getFileName().toString(), ".tmp");
        try {
            JSON.writeValue(tmp.toFile(), toJson());
            Files.move(tmp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
    }

    /** The JSON object a profile file holds. */
    public ObjectNode toJson() {
        ObjectNode o = JSON.createObjectNode();
        o.put("backend", backend);
        o.put("source", source);
        o.put("forward_flops_per_second", forwardFlopsPerSecond);
        o.put("backward_flops_per_second", backwardFlopsPerSecond);
        o.put("kernel_call_seconds", kernelCallSeconds);
        o.put("all_to_all_bytes_per_second", allToAllBytesPerSecond);
        o.put("all_to_all_latency_seconds", allToAllLatencySeconds);
        o.put("p2p_bytes_per_second", p2pBytesPerSecond);
        o.put("p2p_latency_seconds", p2pLatencySeconds);
        o.put("memory_per_rank_bytes", memoryPerRankBytes);
        return o;
    }

    /** The same constants with another memory limit per rank. */
    public CostProfile withMemoryPerRank(long bytes) {
        return new CostProfile(backend, source, forwardFlopsPerSecond, backwardFlopsPerSecond, kernelCallSeconds,
                allToAllBytesPerSecond, allToAllLatencySeconds, p2pBytesPerSecond, p2pLatencySeconds, bytes, builtIn);
    }

    private static CostProfile fromJson(JsonNode root, String where) {
        if (root == null || !root.isObject()) {
            throw new IllegalArgumentException("profile " + where + " must be one JSON object");
        }
        try {
            return new CostProfile(text(root, "backend", where), text(root, "source", where),
                    number(root, "forward_flops_per_second", where), number(root, "backward_flops_per_second", where),
                    number(root, "kernel_call_seconds", where), number(root, "all_to_all_bytes_per_second", where),
                    number(root, "all_to_all_latency_seconds", where), number(root, "p2p_bytes_per_second", where),
                    number(root, "p2p_latency_seconds", where), (long) number(root, "memory_per_rank_bytes", where), false);
        } catch (IllegalArgumentException e) {
            throw e.getMessage().startsWith("profile ") ? e : new IllegalArgumentException("profile " + where + ": "
                    + e.getMessage());
        }
    }

    private static String text(JsonNode root, String field, String where) {
        JsonNode n = root.get(field);
        if (n == null || !n.isTextual()) {
            throw new IllegalArgumentException("profile " + where + ": field \"" + field + "\" (a string) is missing");
        }
        return n.asText();
    }

    private static double number(JsonNode root, String field, String where) {
        JsonNode n = root.get(field);
        if (n == null || !n.isNumber()) {
            throw new IllegalArgumentException("profile " + where + ": field \"" + field + "\" (a number) is missing");
        }
        return n.asDouble();
    }

    private static void positive(String name, double v) {
        if (!(v > 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException(name + " must be a positive finite number, got " + v);
        }
    }

    private static void nonNegative(String name, double v) {
        if (!(v >= 0) || Double.isInfinite(v)) {
            throw new IllegalArgumentException(name + " must be a finite number >= 0, got " + v);
        }
    }
}
