package org.usp4j.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.launch.LaunchOutcome;
import org.usp4j.launch.LaunchPlan;
import org.usp4j.launch.ProcessLauncher;
import org.usp4j.launch.store.Tokens;

/** Ranks as real JVMs: the launcher's environment, the store and the rendezvous end to end, and rank 0 dying. */
@Timeout(120)
class MultiProcessRendezvousTest {

    private static final Pattern LINE = Pattern.compile(
            "\\[rank (\\d)] rank (\\d) of 3 local (\\d)/3 from USP4J id ([0-9a-f]{16}) \\(128 bytes\\)");

    @Test
    void threeLaunchedJvmsShareTheUniqueIdFromRankZero() throws Exception {
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        LaunchPlan plan = new LaunchPlan(3, 1, 0, "127.0.0.1", 0, Tokens.generate(), Duration.ofSeconds(60),
                Duration.ofSeconds(5), JavaProcesses.command(RendezvousProbe.class));
        LaunchOutcome outcome = new ProcessLauncher(plan, new PrintWriter(out), new PrintWriter(err)).run();
        assertTrue(outcome.succeeded(), () -> outcome.failure() + "\nout:\n" + out + "\nerr:\n" + err);

        TreeSet<Integer> ranks = new TreeSet<>();
        TreeSet<String> ids = new TreeSet<>();
        for (String line : out.toString().split("\\R")) {
            Matcher m = LINE.matcher(line);
            assertTrue(m.matches(), "unexpected output line: " + line);
            assertEquals(m.group(1), m.group(2), "prefix and detected rank agree");
            assertEquals(m.group(2), m.group(3), "one node: local rank = rank");
            ranks.add(Integer.parseInt(m.group(2)));
            ids.add(m.group(4));
        }
        assertEquals(new TreeSet<>(List.of(0, 1, 2)), ranks);
        assertEquals(1, ids.size(), "every rank received rank 0's id: " + ids);
    }

    @Test
    void whenRankZeroDiesTheOthersFailNamingTheStoreLongBeforeTheirTimeout() throws Exception {
        int port;
        try (var s = new java.net.ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String token = Tokens.generate();
        List<Process> ranks = new ArrayList<>();
        long t0 = System.nanoTime();
        try {
            for (int r = 0; r < 3; r++) {
                ProcessBuilder pb = new ProcessBuilder(JavaProcesses.command(RendezvousProbe.class, "root-dies"));
                // the environment any launcher would give: here torchrun's, to detect it from a real process
                pb.environment().putAll(Map.of("RANK", "" + r, "WORLD_SIZE", "3", "LOCAL_RANK", "" + r,
                        "LOCAL_WORLD_SIZE", "3", "MASTER_ADDR", "127.0.0.1", "MASTER_PORT", "" + (port - 1),
                        "USP4J_TOKEN", token, "USP4J_TIMEOUT", "60"));
                pb.environment().keySet().removeIf(k -> k.startsWith("USP4J_") && !k.equals("USP4J_TOKEN")
                        && !k.equals("USP4J_TIMEOUT"));
                ranks.add(pb.start());
            }
            assertEquals(7, waitFor(ranks.get(0)), "rank 0 halted with 7");
            for (int r = 1; r < 3; r++) {
                Process p = ranks.get(r);
                assertEquals(1, waitFor(p), "rank " + r + " fails");
                String stderr = read(p.getErrorStream());
                assertTrue(stderr.contains("error: rank " + r + " of 3: could not ")
                        && stderr.contains("lost the connection to the store at 127.0.0.1:" + port)
                        && stderr.contains("may have exited"), stderr);
            }
            long s = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - t0);
            assertTrue(s < 30, "took " + s + " s; the ranks' timeout was 60 s");
        } finally {
            ranks.forEach(Process::destroyForcibly);
        }
    }

    private static int waitFor(Process p) throws InterruptedException {
        assertTrue(p.waitFor(60, TimeUnit.SECONDS), "process " + p.pid() + " still running");
        return p.exitValue();
    }

    private static String read(InputStream in) throws IOException {
        return new String(in.readAllBytes(), StandardCharsets.UTF_8);
    }
}
