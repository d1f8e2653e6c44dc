package org.usp4j.launch;

import java.util.ArrayList;
import java.util.List;

/** Command lines that start a main class of the test class path in a fresh JVM (the one running the tests). */
public final class JavaProcesses {

    private JavaProcesses() {
    }

    /** {@code java -cp <test class path> main args...}, small heap, quick start. */
    public static List<String> command(Class<?> main, String... args) {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> cmd = new ArrayList<>(List.of(java, "-Xmx64m", "-XX:TieredStopAtLevel=1", "-Xshare:auto",
                "-cp", System.getProperty("java.class.path"), main.getName()));
        cmd.addAll(List.of(args));
        return cmd;
    }
}
