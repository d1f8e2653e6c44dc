package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.usp4j.launch.Pids;
import org.usp4j.launch.JavaProcesses;

/** {@code usp4j launch} through the command line: usage errors, a real launch, failure and signal handling. */
@Timeout(60)
class LaunchCommandTest {

    private record Result(int code, String out, String err) {
        List<String> errLines() {
            return err.isEmpty() ? List.of() : List.of(err.split("\\R"));
        }

        String oneErrorLine(int expectedCode) {
            assertEquals(expectedCode, code, () -> "exit code; stderr: " + err + " stdout: " + out);
            List<String> own = errLines().stream().filter(l -> !l.startsWith("[rank ")).toList();
            assertEquals(1, own.size(), () -> "exactly one line of the launcher's own on stderr: " + err);
            assertTrue(own.get(0).startsWith("error: "), own.get(0));
            return own.get(0);
        }
    }

    private static Result run(String... args) {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int code = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args);
        return new Result(code, out.toString(), err.toString());
    }

    @Test
    void launchIsACommandWithHelpAndVersion() {
        Result top = run("--help");
        assertEquals(0, top.code());
        assertTrue(top.out().contains("launch"), top.out());
        Result help = run("launch", "--help");
        assertEquals(0, help.code(), help.err());
        assertTrue(help.out().contains("--nproc-per-node=N") && help.out().contains("COMMAND"), help.out());
        Result version = run("launch", "--version");
        assertEquals(0, version.code(), version.err());
        assertTrue(version.out().startsWith("usp4j "), version.out());
    }

    @Test
    void usageErrorsExitTwoWithOneLine() {
        assumeTrue(System.getenv("USP4J_TOKEN") == null, "USP4J_TOKEN is set in this environment");
        String[][] cases = {
            {"error: Missing required option: '--nproc-per-node=N'", "launch", "--", "true"},
            {"error: --nproc-per-node must be in [1, 1024], got 0", "launch", "--nproc-per-node", "0", "true"},
            {"error: Missing required parameter: 'COMMAND'", "launch", "--nproc-per-node", "2"},
            {"error: --master-addr is required with --nnodes 2", "launch", "--nproc-per-node", "2", "--nnodes", "2",
                "true"},
            {"error: --master-port is required with --nnodes 2", "launch", "--nproc-per-node", "2", "--nnodes", "2",
                "--master-addr", "10.0.0.1", "true"},
            {"error: --nnodes 2 needs the same secret on every node: export USP4J_TOKEN", "launch",
                "--nproc-per-node", "2", "--nnodes", "2", "--master-addr", "10.0.0.1", "--master-port", "29500",
                "true"},
            {"error: --node-rank must be in [0, 1) for --nnodes 1, got 1", "launch", "--nproc-per-node", "1",
                "--node-rank", "1", "true"},
            {"error: --master-port must be in [1, 65535], got 70000", "launch", "--nproc-per-node", "1",
                "--master-port", "70000", "true"},
            {"error: --timeout must be positive, got 0.0", "launch", "--nproc-per-node", "1", "--timeout", "0", "true"},
            {"error: Invalid value for option '--timeout': 'soon' is not a double", "launch", "--nproc-per-node", "1",
                "--timeout", "soon", "true"},
            {"error: --grace must be non-negative, got -1.0", "launch", "--nproc-per-node", "1", "--grace", "-1",
                "true"},
            {"error: Unknown option: '--nnode'", "launch", "--nproc-per-node", "2", "--nnode", "2", "true"},
            {"error: Unknown option: '-x'", "launch", "--nproc-per-node", "2", "-x", "true"},
        };
        for (String[] c : cases) {
            String[] args = java.util.Arrays.copyOfRange(c, 1, c.length);
            String line = run(args).oneErrorLine(2);
            assertTrue(line.startsWith(c[0]), () -> String.join(" ", args) + " -> " + line);
        }
    }

    @Test
    void aCommandStartingWithADashNeedsTheSeparator() {
        Result r = run("launch", "--nproc-per-node", "1", "--", "-c", "true");
        String line = r.oneErrorLine(1); // accepted as the command; it just cannot start
        assertTrue(line.startsWith("error: cannot start rank 0: Cannot run program \"-c\""), line);
    }

    @Test
    void threeRanksRunWithTheirEnvironmentAndPrefixedOutput() {
        // no '--': everything from the first positional on is the command, its options included
        Result r = run("launch", "--nproc-per-node", "3", "bash", "-c",
                "echo \"rank $USP4J_RANK of $USP4J_WORLD_SIZE local $LOCAL_RANK token $USP4J_TOKEN\"; "
                        + "echo \"warn $RANK\" >&2", "--not-an-option-of-launch");
        assertEquals(0, r.code(), r.err());
        List<String> lines = List.of(r.out().split("\\R"));
        assertEquals(3, lines.size(), r.out());
        TreeSet<String> withoutToken = new TreeSet<>();
        TreeSet<String> tokens = new TreeSet<>();
        for (String line : lines) {
            int t = line.indexOf(" token ");
            withoutToken.add(line.substring(0, t));
            tokens.add(line.substring(t + 7));
        }
        assertEquals(new TreeSet<>(List.of("[rank 0] rank 0 of 3 local 0", "[rank 1] rank 1 of 3 local 1",
                "[rank 2] rank 2 of 3 local 2")), withoutToken);
        assertEquals(1, tokens.size(), "one generated token for the job: " + tokens);
        assertTrue(tokens.first().matches("[0-9a-f]{32}"), tokens.first());
        assertEquals(new TreeSet<>(List.of("[rank 0] warn 0", "[rank 1] warn 1", "[rank 2] warn 2")),
                new TreeSet<>(r.errLines()));
    }

    @Test
    void aFailingRankFailsTheLaunchNamingItsExitCode(@TempDir Path dir) throws Exception {
        long t0 = System.nanoTime();
        Result r = run("launch", "--nproc-per-node", "3", "--grace", "2", "--", "bash", "-c",
                "if [ \"$RANK\" = 2 ]; then sleep 0.3; exit 4; fi; echo $$ > " + dir + "/pid$RANK; exec sleep 30");
        long ms = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        assertEquals("error: rank 2 exited with code 4; stopped ranks [0, 1]", r.oneErrorLine(1));
        assertTrue(ms < 10_000, "took " + ms + " ms");
        for (int rank = 0; rank < 2; rank++) {
            long pid = Long.parseLong(Files.readString(dir.resolve("pid" + rank)).strip());
            assertTrue(Pids.awaitStopped(pid, 2_000));
        }
        String cannot = run("launch", "--nproc-per-node", "1", "/nonexistent/prog").oneErrorLine(1);
        assertTrue(cannot.startsWith("error: cannot start rank 0: Cannot run program \"/nonexistent/prog\""), cannot);
    }

    @Test
    void sigtermToTheLauncherStopsEveryRank(@TempDir Path dir) throws Exception {
        Process launcher = new ProcessBuilder(JavaProcesses.command(Main.class, "launch", "--nproc-per-node", "2",
                "--grace", "3", "--", "bash", "-c", "echo $$ > " + dir + "/pid$RANK; echo ready; exec sleep 60"))
                .redirectErrorStream(true).start();
        try {
            BufferedReader out = new BufferedReader(new InputStreamReader(launcher.getInputStream(),
                    StandardCharsets.UTF_8));
            List<String> seen = new ArrayList<>();
            while (seen.stream().filter(l -> l.endsWith("ready")).count() < 2) {
                String line = out.readLine();
                assertTrue(line != null, "launcher ended early: " + seen);
                seen.add(line);
            }
            long[] pids = {Long.parseLong(Files.readString(dir.resolve("pid0")).strip()),
                Long.parseLong(Files.readString(dir.resolve("pid1")).strip())};
            long t0 = System.nanoTime();
            launcher.destroy(); // SIGTERM
            assertTrue(launcher.waitFor(20, TimeUnit.SECONDS), "launcher did not exit after SIGTERM");
            assertEquals(143, launcher.exitValue());
            assertTrue(TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0) < 10_000);
            for (long pid : pids) {
                assertTrue(Pids.awaitStopped(pid, 2_000), "rank pid " + pid);
            }
        } finally {
            launcher.destroyForcibly();
        }
    }
}
