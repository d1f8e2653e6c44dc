package org.usp4j.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.api.io.TempDir;
import org.usp4j.launch.Pids;

/** The launcher with small bash ranks: environment, prefixes, failure propagation, stubborn ranks. */
@Timeout(60)
class ProcessLauncherTest {

    private static final String TOKEN = "test-token-0123456789abcdef";

    private record Run(LaunchOutcome outcome, String out, String err, long millis) {
        List<String> outLines() {
            return out.isEmpty() ? List.of() : List.of(out.split("\\R"));
        }
    }

    private static Run launch(LaunchPlan plan) throws InterruptedException {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        long t0 = System.nanoTime();
        LaunchOutcome o = new ProcessLauncher(plan, new PrintWriter(out), new PrintWriter(err)).run();
        return new Run(o, out.toString(), err.toString(), TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0));
    }

    private static LaunchPlan plan(int nproc, int nnodes, int nodeRank, int port, double graceSeconds, String script) {
        return new LaunchPlan(nproc, nnodes, nodeRank, "127.0.0.1", port, TOKEN, Duration.ofMillis(2500),
                Duration.ofMillis((long) (graceSeconds * 1000)), List.of("bash", "-c", script));
    }

    @Test
    void everyRankGetsItsEnvironmentAndItsOutputIsPrefixed() throws Exception {
        Run run = launch(plan(2, 3, 1, 29999, 5, """
                echo "usp4j $USP4J_RANK/$USP4J_WORLD_SIZE local $USP4J_LOCAL_RANK/$USP4J_LOCAL_WORLD_SIZE \
                node $USP4J_NODE_RANK/$USP4J_NNODES store $USP4J_MASTER_ADDR:$USP4J_MASTER_PORT \
                token $USP4J_TOKEN timeout $USP4J_TIMEOUT"
                echo "torch $RANK/$WORLD_SIZE local $LOCAL_RANK/$LOCAL_WORLD_SIZE master $MASTER_ADDR:$MASTER_PORT"
                echo "stderr of $RANK" >&2
                printf 'no newline at the end'
                """));
        assertTrue(run.outcome().succeeded(), run.outcome().failure());
        assertEquals(-1, run.outcome().firstFailedRank());
        // node 1 of 3 with 2 per node holds global ranks 2 and 3
        TreeSet<String> expected = new TreeSet<>();
        for (int local = 0; local < 2; local++) {
            int rank = 2 + local;
            expected.add("[rank " + rank + "] usp4j " + rank + "/6 local " + local + "/2 node 1/3 store 127.0.0.1:29999 "
                    + "token " + TOKEN + " timeout 2.5");
            expected.add("[rank " + rank + "] torch " + rank + "/6 local " + local + "/2 master 127.0.0.1:29999");
            expected.add("[rank " + rank + "] no newline at the end");
        }
        assertEquals(expected, new TreeSet<>(run.outLines()));
        assertEquals(new TreeSet<>(List.of("[rank 2] stderr of 2", "[rank 3] stderr of 3")),
                new TreeSet<>(Arrays.asList(run.err().split("\\R"))));
        assertEquals(List.of(2, 3), run.outcome().ranks().stream().map(RankExit::rank).toList());
        assertTrue(run.outcome().ranks().stream().allMatch(r -> r.exitCode() == 0 && !r.stoppedByLauncher()));
    }

    @Test
    void aFailingRankStopsTheOthers(@TempDir Path dir) throws Exception {
        Run run = launch(plan(3, 1, 0, 0, 5, """
                if [ "$RANK" = 1 ]; then sleep 0.5; echo "rank 1 gives up" >&2; exit 3; fi
                echo $$ > %s/pid$RANK
                exec sleep 30
                """.formatted(dir)));
        LaunchOutcome o = run.outcome();
        assertEquals("rank 1 exited with code 3; stopped ranks [0, 2]", o.failure());
        assertEquals(1, o.firstFailedRank());
        assertTrue(run.millis() < 10_000, "took " + run.millis() + " ms, the others sleep 30 s");
        assertEquals("[rank 1] rank 1 gives up", run.err().strip());
        for (int r : new int[] {0, 2}) {
            RankExit e = o.ranks().get(r);
            assertTrue(e.stoppedByLauncher());
            assertEquals(143, e.exitCode(), "SIGTERM");
            assertEquals("was killed by signal 15 (exit code 143)", e.describeExit());
            long pid = Long.parseLong(Files.readString(dir.resolve("pid" + r)).strip());
            assertTrue(Pids.awaitStopped(pid, 2_000), "rank " + r + " still alive");
        }
    }

    @Test
    void ranksThatIgnoreSigtermAreKilledAfterTheGracePeriod(@TempDir Path dir) throws Exception {
        // a shell that ignores TERM and forks a sleeper that ignores it too (ignored signals survive exec)
        Run run = launch(plan(3, 1, 0, 0, 0.5, """
                trap '' TERM
                if [ "$RANK" = 2 ]; then sleep 0.3; exit 5; fi
                sleep 30 &
                echo $! > %s/child$RANK
                wait
                """.formatted(dir)));
        assertEquals("rank 2 exited with code 5; stopped ranks [0, 1] (killed [0, 1] after a 500 ms grace period)",
                run.outcome().failure());
        assertTrue(run.millis() < 10_000, "took " + run.millis() + " ms");
        for (int r : new int[] {0, 1}) {
            assertEquals(137, run.outcome().ranks().get(r).exitCode(), "SIGKILL after the grace period");
            long pid = Long.parseLong(Files.readString(dir.resolve("child" + r)).strip());
            assertTrue(Pids.awaitStopped(pid, 2_000),
                    "the rank's own child (a descendant) was killed too");
        }
    }

    @Test
    void aCommandThatCannotStartIsReported() throws Exception {
        LaunchPlan plan = new LaunchPlan(2, 1, 0, "127.0.0.1", 0, TOKEN, null, Duration.ofSeconds(1),
                List.of("/nonexistent/usp4j-test-program", "x"));
        Run run = launch(plan);
        assertTrue(run.outcome().failure().startsWith("cannot start rank 0: Cannot run program "
                + "\"/nonexistent/usp4j-test-program\""), run.outcome().failure());
        assertEquals(List.of(), run.outcome().ranks());
    }

    @Test
    void theLauncherStopsItsRanksWhenInterrupted(@TempDir Path dir) throws Exception {
        Thread caller = Thread.currentThread();
        Thread.ofVirtual().start(() -> {
            try {
                while (!Files.exists(dir.resolve("pid1"))) {
                    Thread.sleep(20);
                }
                Thread.sleep(100);
            } catch (InterruptedException e) {
                return;
            }
            caller.interrupt();
        });
        assertThrows(InterruptedException.class, () -> launch(plan(2, 1, 0, 0, 2,
                "echo $$ > %s/pid$RANK; exec sleep 30".formatted(dir))));
        for (int r = 0; r < 2; r++) {
            long pid = Long.parseLong(Files.readString(dir.resolve("pid" + r)).strip());
            assertTrue(Pids.awaitStopped(pid, 2_000), "rank " + r + " still alive");
        }
    }

    @Test
    void planValidationNamesTheOptions() {
        Duration g = Duration.ofSeconds(1);
        List<String> cmd = List.of("true");
        Map<String, Runnable> cases = Map.of(
                "--nproc-per-node must be in [1, 1024], got 0",
                () -> new LaunchPlan(0, 1, 0, "h", 0, TOKEN, null, g, cmd),
                "--node-rank must be in [0, 2) for --nnodes 2, got 2",
                () -> new LaunchPlan(1, 2, 2, "h", 1, TOKEN, null, g, cmd),
                "--master-port is required with --nnodes 2 (every node must name the same port)",
                () -> new LaunchPlan(1, 2, 0, "h", 0, TOKEN, null, g, cmd),
                "--master-addr 'a b' is not a host name or address",
                () -> new LaunchPlan(1, 1, 0, "a b", 0, TOKEN, null, g, cmd),
                "--timeout must be positive, got 0 s",
                () -> new LaunchPlan(1, 1, 0, "h", 0, TOKEN, Duration.ZERO, g, cmd),
                "no command to launch (usage: usp4j launch [options] -- <command...>)",
                () -> new LaunchPlan(1, 1, 0, "h", 0, TOKEN, null, g, List.of()));
        cases.forEach((message, make) ->
                assertEquals(message, assertThrows(IllegalArgumentException.class, make::run).getMessage()));
        LaunchPlan p = new LaunchPlan(4, 2, 1, "h", 5, TOKEN, null, g, cmd);
        assertEquals(8, p.worldSize());
        assertEquals(7, p.globalRank(3));
        assertNull(p.rankEnvironment(0, 5).get("USP4J_TIMEOUT"), "no --timeout: the ranks' own setting stands");
        assertFalse(p.toString().contains(TOKEN));
    }
}
