package org.usp4j.launch;

import java.io.BufferedReader;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Runs a {@link LaunchPlan} on this node, the way torchrun's agent does: starts one process per local rank
 * with its rank environment, forwards each line it prints to our stdout or stderr behind a
 * {@code [rank k]} prefix, and waits. When a rank fails (non-zero exit, killed) the others are stopped:
 * SIGTERM to them and their descendants, SIGKILL after the grace period. When this JVM is asked to stop
 * (SIGTERM, Ctrl-C) a shutdown hook does the same, so no rank outlives the launcher.
 */
public final class ProcessLauncher {

    private static final Logger LOG = LogManager.getLogger(ProcessLauncher.class);
    /** How long output may keep flowing after the last rank exited (grandchildren can hold the pipes open). */
    private static final long DRAIN_MILLIS = 2_000;

    private final LaunchPlan plan;
    private final PrintWriter out;
    private final PrintWriter err;
    private final List<Rank> ranks = new ArrayList<>();
    private volatile boolean interrupted;

    /** A started rank and its output pumps. */
    private static final class Rank {
        final int rank;
        final int localRank;
        final Process process;
        final List<Thread> pumps = new ArrayList<>(2);
        volatile boolean stoppedByLauncher;
        volatile boolean killedByLauncher;

        Rank(int rank, int localRank, Process process) {
            this.rank = rank;
            this.localRank = localRank;
            this.process = process;
        }
    }

    public ProcessLauncher(LaunchPlan plan, PrintWriter out, PrintWriter err) {
        this.plan = Objects.requireNonNull(plan, "plan");
        this.out = Objects.requireNonNull(out, "out");
        this.err = Objects.requireNonNull(err, "err");
    }

    /**
     * Starts the ranks and returns when all have exited. Interrupting the calling thread stops them (and
     * then throws {@link InterruptedException}). One run per launcher.
     */
    public LaunchOutcome run() throws InterruptedException {
        synchronized (ranks) {
            if (!ranks.isEmpty()) {
                throw new IllegalStateException("this launcher has already run");
            }
        }
        int port;
        try {
            port = plan.masterPort() != 0 ? plan.masterPort() : freePort(plan.masterAddr());
        } catch (IOException e) {
            return new LaunchOutcome(List.of(), "cannot find a free port on " + plan.masterAddr() + " for the store: "
                    + e.getMessage(), -1);
        }
        LOG.info("launching {} rank(s) on node {} of {} (world size {}), store {}:{}: {}", plan.nprocPerNode(),
                plan.nodeRank(), plan.nnodes(), plan.worldSize(), plan.masterAddr(), port, plan.command());
        Thread hook = Thread.ofPlatform().name("usp4j-launch-shutdown").unstarted(this::onShutdown);
        Runtime.getRuntime().addShutdownHook(hook);
        try {
            return superviseAll(port);
        } catch (InterruptedException e) {
            interrupted = true;
            stopAll();
            try {
                awaitAll();
            } catch (InterruptedException again) {
                killRemaining();
            }
            throw e;
        } finally {
            try {
                Runtime.getRuntime().removeShutdownHook(hook);
            } catch (IllegalStateException e) {
                // the JVM is already shutting down: the hook is running
            }
            drainOutput();
        }
    }

    private LaunchOutcome superviseAll(int port) throws InterruptedException {
        BlockingQueue<Rank> exited = new LinkedBlockingQueue<>();
        for (int local = 0; local < plan.nprocPerNode(); local++) {
            int rank = plan.globalRank(local);
            ProcessBuilder pb = new ProcessBuilder(plan.command());
            pb.environment().putAll(plan.rankEnvironment(local, port));
            pb.redirectInput(ProcessBuilder.Redirect.from(new File("/dev/null")));
            Process process;
            try {
                process = pb.start();
            } catch (IOException e) {
                stopAll();
                awaitAll();
                return new LaunchOutcome(exits(), "cannot start rank " + rank + ": " + e.getMessage(), -1);
            }
            Rank r = new Rank(rank, local, process);
            r.pumps.add(pump(process.getInputStream(), out, r, "out"));
            r.pumps.add(pump(process.getErrorStream(), err, r, "err"));
            synchronized (ranks) {
                ranks.add(r);
            }
            process.onExit().thenRun(() -> exited.add(r));
            LOG.debug("rank {} started, pid {}", rank, process.pid());
        }

        Rank culprit = null;
        long killAt = Long.MAX_VALUE;
        int running = plan.nprocPerNode();
        while (running > 0) {
            Rank r;
            if (killAt == Long.MAX_VALUE) {
                r = exited.take();
            } else {
                r = exited.poll(Math.max(0, killAt - System.nanoTime()), TimeUnit.NANOSECONDS);
                if (r == null) { // grace period over
                    killRemaining();
                    killAt = Long.MAX_VALUE;
                    continue;
                }
            }
            running--;
            int code = r.process.exitValue();
            LOG.debug("rank {} (pid {}) exited with {}", r.rank, r.process.pid(), code);
            if (code != 0 && culprit == null && !r.stoppedByLauncher && !interrupted) {
                culprit = r;
                if (running > 0) {
                    LOG.info("rank {} failed ({}); stopping the others", r.rank, describe(code));
                    stopAll();
                    killAt = System.nanoTime() + plan.gracePeriod().toNanos();
                }
            }
        }
        List<RankExit> exits = exits();
        if (interrupted) {
            return new LaunchOutcome(exits, "interrupted: stopped ranks " + stoppedRanks(exits), -1);
        }
        if (culprit == null) {
            return new LaunchOutcome(exits, null, -1);
        }
        RankExit failed = exits.get(culprit.localRank);
        List<Integer> stopped = stoppedRanks(exits);
        List<Integer> killed = snapshot().stream().filter(k -> k.killedByLauncher).map(k -> k.rank).toList();
        return new LaunchOutcome(exits, "rank " + failed.rank() + " " + failed.describeExit()
                + (stopped.isEmpty() ? "" : "; stopped ranks " + stopped)
                + (killed.isEmpty() ? "" : " (killed " + killed + " after a " + plan.gracePeriod().toMillis()
                        + " ms grace period)"), failed.rank());
    }

    // ---- stopping ----

    /** SIGTERM to every rank still running and to its descendants (a shell's children hold our pipes too). */
    private void stopAll() {
        for (Rank r : snapshot()) {
            if (r.process.isAlive()) {
                r.stoppedByLauncher = true;
                List<ProcessHandle> descendants = r.process.descendants().toList();
                r.process.destroy();
                descendants.forEach(ProcessHandle::destroy);
            }
        }
    }

    /** SIGKILL to whatever survived the grace period. */
    private void killRemaining() {
        for (Rank r : snapshot()) {
            if (r.process.isAlive()) {
                r.killedByLauncher = true;
                LOG.info("rank {} (pid {}) did not stop within {} ms of SIGTERM; killing it", r.rank, r.process.pid(),
                        plan.gracePeriod().toMillis());
                List<ProcessHandle> descendants = r.process.descendants().toList();
                r.process.destroyForcibly();
                descendants.forEach(ProcessHandle::destroyForcibly);
            }
        }
    }

    /** The JVM is exiting (SIGTERM, SIGINT): stop the ranks, give them the grace period, then kill them. */
    private void onShutdown() {
        interrupted = true;
        List<Rank> alive = snapshot().stream().filter(r -> r.process.isAlive()).toList();
        if (alive.isEmpty()) {
            return;
        }
        err.println("usp4j launch: stopping " + alive.size() + " rank(s)");
        err.flush();
        stopAll();
        long deadline = System.nanoTime() + plan.gracePeriod().toNanos();
        for (Rank r : alive) {
            try {
                r.process.waitFor(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (InterruptedException e) {
                break;
            }
        }
        killRemaining();
    }

    private void awaitAll() throws InterruptedException {
        long deadline = System.nanoTime() + plan.gracePeriod().toNanos();
        for (Rank r : snapshot()) {
            r.process.waitFor(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
        }
        killRemaining();
        for (Rank r : snapshot()) {
            r.process.waitFor();
        }
    }

    // ---- output ----

    /** Copies lines from a rank's stream to ours, each behind "[rank k] " (one println, so lines never mix). */
    private static Thread pump(InputStream stream, PrintWriter target, Rank r, String which) {
        String prefix = "[rank " + r.rank + "] ";
        return Thread.ofPlatform().daemon().name("usp4j-launch-rank" + r.rank + "-" + which).start(() -> {
            try (BufferedReader lines = new BufferedReader(new InputStreamReader(stream, StandardCharsets.UTF_8))) {
                String line;
                while ((line = lines.readLine()) != null) {
                    target.println(prefix + line);
                    target.flush();
                }
            } catch (IOException e) {
                // the rank's end of the pipe is gone
            }
        });
    }

    /** Waits a little for the pumps to reach the end of their streams; a pipe held open by a stray grandchild is left. */
    private void drainOutput() {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(DRAIN_MILLIS);
        for (Rank r : snapshot()) {
            for (Thread t : r.pumps) {
                try {
                    t.join(Math.max(1, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime())));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
        out.flush();
        err.flush();
    }

    // ---- helpers ----

    private List<Rank> snapshot() {
        synchronized (ranks) {
            return List.copyOf(ranks);
        }
    }

    private List<RankExit> exits() {
        List<RankExit> exits = new ArrayList<>();
        for (Rank r : snapshot()) {
            int code = r.process.isAlive() ? -1 : r.process.exitValue();
            exits.add(new RankExit(r.rank, r.localRank, r.process.pid(), code, r.stoppedByLauncher));
        }
        return exits;
    }

    private static List<Integer> stoppedRanks(List<RankExit> exits) {
        return exits.stream().filter(RankExit::stoppedByLauncher).map(RankExit::rank).toList();
    }

    private static String describe(int code) {
        return new RankExit(0, 0, 0, code, false).describeExit();
    }

    private static int freePort(String host) throws IOException {
        try (ServerSocket s = new ServerSocket(0, 1, InetAddress.getByName(host))) {
            return s.getLocalPort();
        }
    }
}
