package org.usp4j.nativelib;

import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.Objects;

/**
 * What library resolution may consult: system properties, environment variables, the file-system
 * root under which the well-known directories ({@code /usr/local/cuda}, {@code /opt}, {@code /usr/lib}
 * ...) are looked up, the home and cache directories, the class loader whose class path may hold
 * bytedeco's redist jars, and whether helper programs ({@code ldconfig}, {@code python3}) may be run.
 * A value, so tests can resolve against a made-up machine.
 */
public record ResolverEnvironment(Map<String, String> properties, Map<String, String> environment, Path root,
                                  Path home, Path cacheDir, ClassLoader classLoader, boolean runHelperPrograms) {

    public ResolverEnvironment {
        properties = Map.copyOf(properties);
        environment = Map.copyOf(environment);
        Objects.requireNonNull(root, "root");
        Objects.requireNonNull(home, "home");
        Objects.requireNonNull(cacheDir, "cacheDir");
        Objects.requireNonNull(classLoader, "classLoader");
    }

    /** This process: its system properties and environment, ~/.cache/usp4j (or $XDG_CACHE_HOME/usp4j). */
    public static ResolverEnvironment current() {
        Map<String, String> properties = new HashMap<>();
        System.getProperties().forEach((k, v) -> {
            if (k instanceof String key && v instanceof String value) {
                properties.put(key, value);
            }
        });
        Map<String, String> environment = System.getenv();
        Path home = Path.of(System.getProperty("user.home", "/"));
        String xdgCache = environment.get("XDG_CACHE_HOME");
        Path cache = (xdgCache != null && !xdgCache.isBlank() ? Path.of(xdgCache) : home.resolve(".cache")).resolve("usp4j");
        ClassLoader loader = ResolverEnvironment.class.getClassLoader();
        return new ResolverEnvironment(properties, environment, Path.of("/"), home, cache,
                loader != null ? loader : ClassLoader.getSystemClassLoader(), true);
    }

    /** A well-known absolute directory such as "/usr/local/cuda", under {@link #root()}. */
    Path system(String absolute) {
        return root.resolve(absolute.substring(1));
    }

    /** The value of a property, or of an environment variable; null when unset or blank. */
    String setting(Map<String, String> source, String name) {
        String value = source.get(name);
        return value == null || value.isBlank() ? null : value.strip();
    }
}
