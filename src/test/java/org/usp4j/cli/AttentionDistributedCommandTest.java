package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.usp4j.comm.nccl.NcclProcessRank;
import org.usp4j.tensor.DType;
import picocli.CommandLine;

/**
 * {@code usp4j attention} under a multi-process launcher's environment (given to the command as a map):
 * every check that needs no peer fails the rank with one {@code error:} line and exit 1 before any work,
 * and nothing is written. Without a GPU, that is where a distributed run ends on CI.
 */
class AttentionDistributedCommandTest {

    @TempDir
    Path dir;

    private static Cli.Result run(Map<String, String> env, List<String> args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cl = Main.commandLine(new PrintWriter(out, true), new PrintWriter(err, true));
        ((AttentionCommand) cl.getSubcommands().get("attention").getCommand()).environment = env;
        List<String> all = new ArrayList<>(List.of("attention"));
        all.addAll(args);
        int code = cl.execute(all.toArray(String[]::new));
        return new Cli.Result(code, out.toString(), err.toString());
    }

    /** torchrun's variables for rank {@code rank} of {@code world} on one node, with the job's token. */
    private static Map<String, String> torchrun(int rank, int world) {
        Map<String, String> env = new HashMap<>();
        env.put("RANK", String.valueOf(rank));
        env.put("WORLD_SIZE", String.valueOf(world));
        env.put("LOCAL_RANK", String.valueOf(rank));
        env.put("LOCAL_WORLD_SIZE", String.valueOf(world));
        env.put("MASTER_ADDR", "127.0.0.1");
        env.put("MASTER_PORT", "29500");
        env.put("USP4J_TOKEN", "0123456789abcdef0123456789abcdef");
        env.put("USP4J_TIMEOUT", "2");
        return env;
    }

    private List<String> args(Path input, String... more) {
        List<String> a = new ArrayList<>(List.of("--input", input.toString(), "--output", dir.resolve("out.safetensors")
                .toString(), "--report", dir.resolve("report.json").toString()));
        a.addAll(List.of(more));
        return a;
    }

    private void assertNothingWritten() throws IOException {
        try (var files = Files.list(dir)) {
            assertEquals(List.of(), files.filter(p -> !p.getFileName().toString().equals("in.safetensors")).toList());
        }
    }

    @Test
    void withoutAGpuEveryRankFailsWithOneLineBeforeReadingAnything() throws IOException {
        assumeTrue(NcclProcessRank.unavailableReason().isPresent(), "this machine could run NCCL ranks");
        Path missing = dir.resolve("no-such-input.safetensors"); // never opened: the GPU check comes first
        for (int rank : new int[] {0, 3}) {
            Cli.Result r = run(torchrun(rank, 4), args(missing, "--ulysses", "2", "--ring", "2"));
            String line = r.assertOneErrorLine(ExitCodes.FAILURE);
            assertTrue(line.startsWith("error: rank " + rank + " of 4 (torchrun): a multi-process run needs a GPU with "
                    + "CUDA, cuDNN and NCCL: "), line);
            assertEquals("", r.out());
        }
        // --backend auto and cuda say the same; the reason is GpuAvailability's or NCCL's.
        Cli.Result cuda = run(torchrun(1, 4), args(missing, "--ulysses", "4", "--backend", "cuda"));
        assertTrue(cuda.assertOneErrorLine(ExitCodes.FAILURE).contains(NcclProcessRank.unavailableReason().get()),
                cuda.err());
        assertNothingWritten();
    }

    @Test
    void aMeshThatDoesNotMatchTheWorldIsRefusedFirst() throws IOException {
        Path input = dir.resolve("in.safetensors");
        Cli.writeAttentionInput(input, DType.F32, 1, 1, 16, 4, 4, 8, false);
        Cli.Result r = run(torchrun(1, 4), args(input, "--ulysses", "2"));
        assertEquals("error: rank 1 of 4 (torchrun): --ulysses 2 x --ring 1 makes 2 ranks, but the launcher started 4 "
                + "processes", r.assertOneErrorLine(ExitCodes.FAILURE));
        assertNothingWritten();
    }

    @Test
    void theCpuBackendIsRefusedForAMultiProcessRun() throws IOException {
        Path input = dir.resolve("in.safetensors");
        Cli.writeAttentionInput(input, DType.F32, 1, 1, 16, 4, 4, 8, false);
        Cli.Result r = run(torchrun(0, 2), args(input, "--ring", "2", "--backend", "cpu"));
        assertTrue(r.assertOneErrorLine(ExitCodes.FAILURE).contains("--backend cpu runs in-process ranks only"), r.err());
        assertNothingWritten();
    }

    @Test
    void aMissingTokenOrAPartialEnvironmentIsOneLine() throws IOException {
        Path input = dir.resolve("in.safetensors");
        Cli.writeAttentionInput(input, DType.F32, 1, 1, 16, 4, 4, 8, false);
        Map<String, String> noToken = torchrun(0, 2);
        noToken.remove("USP4J_TOKEN");
        Cli.Result r = run(noToken, args(input, "--ring", "2"));
        assertTrue(r.assertOneErrorLine(ExitCodes.FAILURE).startsWith("error: USP4J_TOKEN is not set"), r.err());

        Map<String, String> partial = torchrun(0, 2);
        partial.remove("LOCAL_RANK");
        r = run(partial, args(input, "--ring", "2"));
        assertTrue(r.assertOneErrorLine(ExitCodes.FAILURE).startsWith("error: partial torchrun environment"), r.err());
        assertNothingWritten();
    }

    private static Cli.Result bench(Map<String, String> env, String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        CommandLine cl = Main.commandLine(new PrintWriter(out, true), new PrintWriter(err, true));
        ((BenchCommand) cl.getSubcommands().get("bench").getCommand()).environment = env;
        List<String> all = new ArrayList<>(List.of("bench"));
        all.addAll(List.of(args));
        return new Cli.Result(cl.execute(all.toArray(String[]::new)), out.toString(), err.toString());
    }

    @Test
    void benchUnderALauncherChecksEverythingBeforeAnyWork() {
        assertEquals("error: rank 2 of 4 (torchrun): --mesh 2x1 makes 2 ranks, but the launcher started 4 processes",
                bench(torchrun(2, 4), "--mesh", "2x2,2x1", "--seq", "64").assertOneErrorLine(ExitCodes.FAILURE));
        assertTrue(bench(torchrun(0, 2), "--backend", "cpu").assertOneErrorLine(ExitCodes.FAILURE)
                .contains("--backend cpu runs in-process ranks only"));
        assertTrue(bench(torchrun(0, 2), "--suite", "gpu").assertOneErrorLine(ExitCodes.FAILURE)
                .endsWith("--suite is for single-process runs"));
        assertTrue(bench(torchrun(1, 2), "--seq", "63").assertOneErrorLine(ExitCodes.USAGE).contains("63"));
        if (NcclProcessRank.unavailableReason().isPresent()) {
            Cli.Result r = bench(torchrun(1, 4), "--seq", "256");
            assertTrue(r.assertOneErrorLine(ExitCodes.FAILURE).startsWith("error: rank 1 of 4 (torchrun): a multi-process "
                    + "run needs a GPU with CUDA, cuDNN and NCCL: "), r.err());
            assertEquals("", r.out());
        }
    }

    @Test
    void aWorldOfOneRunsInProcessAsBefore() throws IOException {
        Path input = dir.resolve("in.safetensors");
        Cli.writeAttentionInput(input, DType.F32, 1, 1, 16, 4, 4, 8, false);
        Cli.Result r = run(torchrun(0, 1), args(input, "--ring", "1"));
        r.assertOk();
        assertTrue(Files.exists(dir.resolve("out.safetensors")) && Files.exists(dir.resolve("report.json")));
        assertFalse(r.out().contains("processes on NCCL"), r.out());
    }
}
