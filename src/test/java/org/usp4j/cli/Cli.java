package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.usp4j.io.SafetensorsWriter;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/** Runs usp4j command lines in this JVM with captured stdout and stderr. */
final class Cli {

    record Result(int exitCode, String out, String err) {

        List<String> errLines() {
            return err.isEmpty() ? List.of() : List.of(err.split("\\R"));
        }

        /** Exit {@code code} with exactly one line, {@code error: ...}, on stderr; returns that line. */
        String assertOneErrorLine(int code) {
            assertEquals(code, exitCode, () -> "exit code; stderr: " + err + " stdout: " + out);
            List<String> lines = errLines();
            assertEquals(1, lines.size(), () -> "stderr must be one line, was: " + err);
            assertTrue(lines.get(0).startsWith("error: "), lines.get(0));
            return lines.get(0);
        }

        void assertOk() {
            assertEquals(0, exitCode, () -> "stderr: " + err + " stdout: " + out);
            assertEquals("", err, "stderr of a successful run");
        }
    }

    private Cli() {
    }

    static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Result(code, out.toString(), err.toString());
    }

    /** Writes standard-normal tensors of the given shapes (name -> [dims]) to {@code file}. */
    static void writeNormal(Path file, DType dtype, long seed, Map<String, long[]> shapes) throws java.io.IOException {
        try (Arena arena = Arena.ofConfined()) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            long s = seed;
            for (Map.Entry<String, long[]> e : shapes.entrySet()) {
                Tensor t = Tensor.allocate(arena, dtype, e.getValue());
                HostTensors.fillNormal(t, s++);
                tensors.put(e.getKey(), t);
            }
            SafetensorsWriter.write(file, tensors);
        }
    }

    /** q, k, v (and do) for attention: q, do [b,s,h,d], k, v [b,s,hkv,d]. */
    static void writeAttentionInput(Path file, DType dtype, long seed, long b, long s, long h, long hkv, long d,
                                    boolean withDo) throws java.io.IOException {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("q", new long[] {b, s, h, d});
        shapes.put("k", new long[] {b, s, hkv, d});
        shapes.put("v", new long[] {b, s, hkv, d});
        if (withDo) {
            shapes.put("do", new long[] {b, s, h, d});
        }
        writeNormal(file, dtype, seed, shapes);
    }
}
