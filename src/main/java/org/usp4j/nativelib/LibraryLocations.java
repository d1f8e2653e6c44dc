package org.usp4j.nativelib;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.TimeUnit;

/**
 * The places a native library is looked for, in order: an explicit setting (system property, then
 * environment variable) and nothing else when one is given; otherwise the CUDA toolkit,
 * LD_LIBRARY_PATH, the system loader's directories, Python {@code nvidia-*} wheels in
 * site-packages, and bytedeco's redist jars on the class path.
 */
final class LibraryLocations {

    /** Finds the candidate files at one place; may run a helper program or extract a jar. */
    interface CandidateFinder {
        List<Path> find() throws IOException;
    }

    /** One place: how error messages name it, and how to find candidates there. */
    record Location(String description, CandidateFinder finder) {
    }

    private static final List<String> SYSTEM_DIRS = List.of(
            "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/lib64", "/lib");

    private LibraryLocations() {
    }

    /** Whether a system property or environment variable names the library, which then is the only place. */
    static boolean isExplicit(NativeLibrary library, ResolverEnvironment env) {
        return env.setting(env.properties(), library.propertyName()) != null
                || env.setting(env.environment(), library.environmentVariable()) != null;
    }

    static List<Location> of(NativeLibrary library, ResolverEnvironment env) {
        String property = env.setting(env.properties(), library.propertyName());
        if (property != null) {
            return List.of(explicit(library, "system property " + library.propertyName() + "=" + property, property));
        }
        String variable = env.setting(env.environment(), library.environmentVariable());
        if (variable != null) {
            return List.of(explicit(library, "environment variable " + library.environmentVariable() + "=" + variable, variable));
        }
        List<Location> locations = new ArrayList<>();
        toolkit(library, env, locations);
        locations.add(ldLibraryPath(library, env));
        locations.add(systemLoader(library, env));
        python(library, env, locations);
        locations.add(new Location("bytedeco redist jar on the class path (" + RedistJars.resourceFolder()
                + library.fileName() + ")",
                () -> RedistJars.locate(library, env.classLoader(), env.cacheDir()).map(List::of).orElse(List.of())));
        return locations;
    }

    private static Location explicit(NativeLibrary library, String description, String value) {
        return new Location(description, () -> {
            Path path = Path.of(value);
            if (Files.isDirectory(path)) {
                return existing(List.of(path.resolve(library.fileName())));
            }
            return existing(List.of(path));
        });
    }

    private static void toolkit(NativeLibrary library, ResolverEnvironment env, List<Location> out) {
        Set<Path> seen = new LinkedHashSet<>();
        for (String variable : List.of("CUDA_HOME", "CUDA_PATH")) {
            String root = env.setting(env.environment(), variable);
            if (root != null) {
                addToolkit(library, Path.of(root), "CUDA toolkit (" + variable + "=" + root + ")", seen, out);
            }
        }
        addToolkit(library, env.system("/usr/local/cuda"), "CUDA toolkit " + env.system("/usr/local/cuda"), seen, out);
    }

    private static void addToolkit(NativeLibrary library, Path root, String description, Set<Path> seen, List<Location> out) {
        Path normalized = root.toAbsolutePath().normalize();
        if (seen.add(normalized)) {
            String targets = "targets/" + (isArm() ? "sbsa-linux" : "x86_64-linux") + "/lib";
            List<Path> files = List.of(normalized.resolve("lib64").resolve(library.fileName()),
                    normalized.resolve("lib").resolve(library.fileName()),
                    normalized.resolve(targets).resolve(library.fileName()));
            out.add(new Location(description + ": lib64, lib, " + targets, () -> existing(files)));
        }
    }

    private static boolean isArm() {
        String arch = System.getProperty("os.arch", "");
        return arch.equals("aarch64") || arch.equals("arm64");
    }

    private static Location ldLibraryPath(NativeLibrary library, ResolverEnvironment env) {
        String value = env.setting(env.environment(), "LD_LIBRARY_PATH");
        if (value == null) {
            return new Location("LD_LIBRARY_PATH (not set)", List::of);
        }
        List<Path> files = new ArrayList<>();
        for (String dir : value.split(":")) {
            if (!dir.isBlank()) {
                files.add(Path.of(dir).resolve(library.fileName()));
            }
        }
        return new Location("LD_LIBRARY_PATH=" + value, () -> existing(files));
    }

    private static Location systemLoader(NativeLibrary library, ResolverEnvironment env) {
        List<Path> dirs = SYSTEM_DIRS.stream().map(env::system).toList();
        String description = "system loader (" + (env.runHelperPrograms() ? "ldconfig -p, " : "")
                + String.join(", ", dirs.stream().map(Path::toString).toList()) + ")";
        return new Location(description, () -> {
            List<Path> files = new ArrayList<>();
            if (env.runHelperPrograms()) {
                files.addAll(parseLdconfig(run(List.of(ldconfig(), "-p")), library.fileName()));
            }
            for (Path dir : dirs) {
                files.add(dir.resolve(library.fileName()));
            }
            return existing(files);
        });
    }

    private static String ldconfig() {
        for (String candidate : List.of("/sbin/ldconfig", "/usr/sbin/ldconfig")) {
            if (Files.isExecutable(Path.of(candidate))) {
                return candidate;
            }
        }
        return "ldconfig";
    }

    /** Paths {@code ldconfig -p} lists for {@code fileName}, e.g. "\tlibnccl.so.2 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnccl.so.2". */
    static List<Path> parseLdconfig(String output, String fileName) {
        List<Path> paths = new ArrayList<>();
        for (String line : output.split("\n")) {
            String trimmed = line.strip();
            int arrow = trimmed.indexOf("=>");
            if (arrow > 0 && trimmed.startsWith(fileName + " ")) {
                paths.add(Path.of(trimmed.substring(arrow + 2).strip()));
            }
        }
        return paths;
    }

    private static void python(NativeLibrary library, ResolverEnvironment env, List<Location> out) {
        List<Path> roots = sitePackagesRoots(env);
        for (Path root : roots) {
            out.add(new Location("Python packages in " + root, () -> existing(wheelFiles(library, root))));
        }
        if (roots.isEmpty()) {
            out.add(new Location("Python site-packages (none found in VIRTUAL_ENV, CONDA_PREFIX, /opt/*/.venv, "
                    + "~/.local, ~/.pyenv, /usr/local/lib, /usr/lib)", List::of));
        }
        if (env.runHelperPrograms()) {
            out.add(new Location("site-packages reported by python3", () -> {
                List<Path> files = new ArrayList<>();
                String listing = run(List.of("python3", "-c",
                        "import site; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()]))"));
                for (String line : listing.split("\n")) {
                    if (!line.isBlank()) {
                        Path root = Path.of(line.strip());
                        if (!roots.contains(root)) {
                            files.addAll(wheelFiles(library, root));
                        }
                    }
                }
                return existing(files);
            }));
        }
    }

    /** site-packages folders in the usual places, newest Python first, each once. */
    static List<Path> sitePackagesRoots(ResolverEnvironment env) {
        Set<Path> roots = new LinkedHashSet<>();
        for (String variable : List.of("VIRTUAL_ENV", "CONDA_PREFIX")) {
            String prefix = env.setting(env.environment(), variable);
            if (prefix != null) {
                roots.addAll(glob(Path.of(prefix), "lib", "python3*", "site-packages"));
            }
        }
        Path opt = env.system("/opt");
        roots.addAll(glob(opt, "*", ".venv", "lib", "python3*", "site-packages"));
        roots.addAll(glob(opt, "*", "venv", "lib", "python3*", "site-packages"));
        roots.addAll(glob(opt, "*", "lib", "python3*", "site-packages"));
        roots.addAll(glob(env.home(), ".local", "lib", "python3*", "site-packages"));
        roots.addAll(glob(env.home(), ".pyenv", "versions", "*", "lib", "python3*", "site-packages"));
        roots.addAll(glob(env.system("/usr/local/lib"), "python3*", "dist-packages"));
        roots.addAll(glob(env.system("/usr/local/lib"), "python3*", "site-packages"));
        roots.addAll(glob(env.system("/usr/lib"), "python3", "dist-packages"));
        roots.addAll(glob(env.system("/usr/lib"), "python3*", "site-packages"));
        return List.copyOf(roots);
    }

    /** Where nvidia-* wheels put the library inside one site-packages folder. */
    static List<Path> wheelFiles(NativeLibrary library, Path root) {
        List<Path> files = new ArrayList<>();
        for (String dir : library.pythonLibDirs()) {
            files.add(root.resolve(dir).resolve(library.fileName()));
        }
        for (Path other : glob(root, "nvidia", "*", "lib")) {
            files.add(other.resolve(library.fileName()));
        }
        return files;
    }

    /** Directories under {@code base} matching the segments, where a segment may contain '*'. */
    static List<Path> glob(Path base, String... segments) {
        List<Path> current = List.of(base);
        for (String segment : segments) {
            List<Path> next = new ArrayList<>();
            for (Path dir : current) {
                if (!segment.contains("*")) {
                    Path child = dir.resolve(segment);
                    if (Files.isDirectory(child)) {
                        next.add(child);
                    }
                    continue;
                }
                if (!Files.isDirectory(dir)) {
                    continue;
                }
                List<Path> matches = new ArrayList<>();
                try (DirectoryStream<Path> stream = Files.newDirectoryStream(dir, segment)) {
                    for (Path child : stream) {
                        if (Files.isDirectory(child)) {
                            matches.add(child);
                        }
                    }
                } catch (IOException | SecurityException e) {
                    continue; // unreadable: nothing there for us
                }
                matches.sort(Comparator.comparing((Path p) -> p.getFileName().toString()).reversed());
                next.addAll(matches);
            }
            current = next;
        }
        return current;
    }

    private static List<Path> existing(List<Path> files) {
        Set<Path> result = new LinkedHashSet<>();
        for (Path file : files) {
            if (Files.isRegularFile(file)) {
                result.add(file.toAbsolutePath().normalize());
            }
        }
        return List.copyOf(result);
    }

    /** Runs a helper program and returns its standard output, or "" when it cannot run. */
    private static String run(List<String> command) {
        try {
            Process process = new ProcessBuilder(command).redirectErrorStream(false)
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            byte[] out = process.getInputStream().readAllBytes();
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                return "";
            }
            return new String(out, StandardCharsets.UTF_8);
        } catch (IOException e) {
            return "";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "";
        }
    }
}
