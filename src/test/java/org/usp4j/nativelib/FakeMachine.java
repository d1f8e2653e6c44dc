package org.usp4j.nativelib;

import java.io.IOException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * Test helper: a made-up machine for library resolution, rooted in a temporary directory, with
 * no helper programs and an empty class path unless given. Real library files can be placed in
 * it as symbolic links to the ones the build unpacked.
 */
public final class FakeMachine {

    private final Path root;
    private final Map<String, String> properties = new HashMap<>();
    private final Map<String, String> environment = new HashMap<>();
    private ClassLoader classLoader = new URLClassLoader(new URL[0], null);

    public FakeMachine(Path root) {
        this.root = root;
    }

    public Path root() {
        return root;
    }

    public FakeMachine property(String name, String value) {
        properties.put(name, value);
        return this;
    }

    public FakeMachine env(String name, String value) {
        environment.put(name, value);
        return this;
    }

    public FakeMachine classPath(Path... entries) throws IOException {
        URL[] urls = new URL[entries.length];
        for (int i = 0; i < entries.length; i++) {
            urls[i] = entries[i].toUri().toURL();
        }
        classLoader = new URLClassLoader(urls, null);
        return this;
    }

    /** Links {@code relative} (under the root) to a real library file, creating directories. */
    public Path link(String relative, Path target) throws IOException {
        Path link = root.resolve(relative);
        Files.createDirectories(link.getParent());
        return Files.createSymbolicLink(link, target.toAbsolutePath());
    }

    public ResolverEnvironment environment() {
        return new ResolverEnvironment(properties, environment, root, root.resolve("home"), root.resolve("cache"),
                classLoader, false);
    }

    /** A real library file unpacked by the build (target/native-libs), named by the test properties. */
    public static Path unpacked(String fileName) {
        String dir = System.getProperty("usp4j.nccl.path");
        if (dir == null) {
            throw new IllegalStateException("usp4j.nccl.path is not set: run the tests through Maven");
        }
        Path file = Path.of(dir, fileName);
        if (!Files.isRegularFile(file)) {
            throw new IllegalStateException(file + " is missing: the build unpacks it (mvn generate-test-resources)");
        }
        return file;
    }
}
