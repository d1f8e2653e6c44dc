package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.io.SafetensorsFile;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

class RandomInputCommandTest {

    @TempDir
    Path dir;

    @Test
    void writesSeededStandardNormalAttentionInputs() throws IOException {
        Path file = dir.resolve("in.safetensors");
        Cli.Result r = Cli.run("random-input", "--batch", "2", "--seq", "64", "--heads", "4", "--kv-heads", "2",
                "--head-dim", "24", "--dtype", "bf16", "--seed", "42", "--output", file.toString());
        r.assertOk();
        assertTrue(r.out().startsWith("wrote " + file), r.out());
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("q", "k", "v", "do"), f.names());
            assertEquals("42", f.metadata().get("seed"));
            assertArrayEquals(new long[] {2, 64, 4, 24}, f.tensor("q").shape());
            assertArrayEquals(new long[] {2, 64, 2, 24}, f.tensor("k").shape());
            assertArrayEquals(new long[] {2, 64, 2, 24}, f.tensor("v").shape());
            assertArrayEquals(new long[] {2, 64, 4, 24}, f.tensor("do").shape());
            for (String name : f.names()) {
                Tensor t = f.tensor(name);
                assertEquals(DType.BF16, t.dtype());
                // N(0, 1) sample moments; n >= 6144, so 6 standard errors is about 0.08 for the mean
                double[] x = HostTensors.toDoubleArray(t);
                double mean = java.util.Arrays.stream(x).average().orElseThrow();
                double var = java.util.Arrays.stream(x).map(v -> (v - mean) * (v - mean)).average().orElseThrow();
                assertEquals(0, mean, 0.08, name + " mean");
                assertEquals(1, var, 0.12, name + " variance");
            }
            assertFalse(java.util.Arrays.equals(HostTensors.toFloatArray(f.tensor("k")),
                    HostTensors.toFloatArray(f.tensor("v"))), "k and v must be independent draws");
        }
    }

    @Test
    void sameSeedSameBytesOtherSeedOtherBytes() throws IOException {
        Path a = dir.resolve("a.safetensors");
        Path b = dir.resolve("b.safetensors");
        Path c = dir.resolve("c.safetensors");
        String[] common = {"random-input", "--seq", "16", "--heads", "2", "--head-dim", "8"};
        Cli.run(concat(common, "--seed", "7", "--output", a.toString())).assertOk();
        Cli.run(concat(common, "--seed", "7", "--output", b.toString())).assertOk();
        Cli.run(concat(common, "--seed", "8", "--output", c.toString())).assertOk();
        assertArrayEquals(Files.readAllBytes(a), Files.readAllBytes(b));
        try (SafetensorsFile fa = SafetensorsFile.open(a); SafetensorsFile fc = SafetensorsFile.open(c)) {
            assertFalse(java.util.Arrays.equals(HostTensors.toFloatArray(fa.tensor("q")),
                    HostTensors.toFloatArray(fc.tensor("q"))));
            assertEquals(DType.F32, fa.tensor("q").dtype());
            assertArrayEquals(new long[] {1, 16, 2, 8}, fa.tensor("k").shape()); // --kv-heads defaults to --heads
        }
    }

    @ParameterizedTest
    @CsvSource(delimiter = '|', value = {
        "--seq 0                    | --seq must be >= 1, got 0",
        "--batch -1                 | --batch must be >= 1, got -1",
        "--head-dim 0               | --head-dim must be >= 1, got 0",
        "--heads 6 --kv-heads 4     | --heads 6 is not a multiple of --kv-heads 4",
        "--kv-heads 0               | --kv-heads must be >= 1, got 0",
        "--dtype f64                | expected f32, bf16 or f16 but was 'f64'",
        "--seq many                 | 'many' is not a long",
        "--seq 4000000 --heads 64 --head-dim 128 | random-input writes at most",
        "--seq 9223372036854775807 --heads 2 | is too large",
    })
    void refusesBadOptionsAsUsageErrors(String options, String expected) {
        Path file = dir.resolve("x.safetensors");
        String[] args = concat(concat(new String[] {"random-input"}, options.trim().split("\\s+")), "--output", file.toString());
        String line = Cli.run(args).assertOneErrorLine(ExitCodes.USAGE);
        assertTrue(line.contains(expected), line);
        assertFalse(Files.exists(file));
    }

    @Test
    void refusesAnOutputItCannotWrite() {
        String line = Cli.run("random-input", "--output", dir.resolve("missing/x.safetensors").toString())
                .assertOneErrorLine(ExitCodes.FAILURE);
        assertTrue(line.contains("does not exist"), line);
        line = Cli.run("random-input", "--output", dir.toString()).assertOneErrorLine(ExitCodes.FAILURE);
        assertTrue(line.contains("is a directory"), line);
    }

    static String[] concat(String[] a, String... b) {
        String[] out = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }
}
