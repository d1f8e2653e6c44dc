package org.usp4j.launch;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Whether a process is still running, for tests that check that the launcher stopped its ranks. */
public final class Pids {

    private Pids() {
    }

    /**
     * True while {@code pid} exists and is not a zombie. A killed orphan stays a zombie until some init reaps
     * it (some containers' PID 1 never does); it no longer runs, so it counts as stopped.
     */
    public static boolean running(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc", Long.toString(pid), "stat"));
            // "pid (comm) S ...": the state follows the last ')' (comm may contain spaces or parentheses)
            char state = stat.charAt(stat.lastIndexOf(')') + 2);
            return state != 'Z' && state != 'X';
        } catch (IOException | IndexOutOfBoundsException e) {
            if (Files.isDirectory(Path.of("/proc"))) {
                return false; // no /proc entry: the process is gone
            }
            return ProcessHandle.of(pid).map(ProcessHandle::isAlive).orElse(false); // no procfs: ask the JDK
        }
    }

    /** Waits up to {@code millis} for {@code pid} to stop running; true when it did. */
    public static boolean awaitStopped(long pid, long millis) throws InterruptedException {
        long deadline = System.nanoTime() + millis * 1_000_000;
        while (running(pid)) {
            if (System.nanoTime() > deadline) {
                return false;
            }
            Thread.sleep(10);
        }
        return true;
    }
}
