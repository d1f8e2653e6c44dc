package org.usp4j.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/** Checks, before any work, that an output file can be created where the user asked for it. */
final class OutputPaths {

    private OutputPaths() {
    }

    /**
     * Whether {@code a} and {@code b} name the same file, however spelled: the same existing file (through
     * links too), or, when one does not exist yet, the same real directory and name.
     */
    static boolean sameFile(Path a, Path b) {
        try {
            if (Files.exists(a) && Files.exists(b)) {
                return Files.isSameFile(a, b);
            }
            return realPath(a).equals(realPath(b));
        } catch (IOException e) {
            return a.toAbsolutePath().normalize().equals(b.toAbsolutePath().normalize());
        }
    }

    private static Path realPath(Path p) throws IOException {
        Path abs = p.toAbsolutePath().normalize();
        if (Files.exists(abs)) {
            return abs.toRealPath();
        }
        Path parent = abs.getParent();
        return parent != null && Files.exists(parent) ? parent.toRealPath().resolve(abs.getFileName()) : abs;
    }

    /** Throws a {@link CommandFailure} naming {@code option} unless {@code file} can be written. */
    static void requireWritable(Path file, String option) {
        Path abs = file.toAbsolutePath().normalize();
        if (Files.isDirectory(abs)) {
            throw new CommandFailure(option + " " + file + " is a directory");
        }
        Path parent = abs.getParent();
        if (parent == null || !Files.isDirectory(parent)) {
            throw new CommandFailure(option + " " + file + ": directory " + parent + " does not exist");
        }
        if (!Files.isWritable(parent)) {
            throw new CommandFailure(option + " " + file + ": directory " + parent + " is not writable");
        }
        if (Files.exists(abs) && !Files.isRegularFile(abs)) {
            throw new CommandFailure(option + " " + file + " exists and is not a regular file");
        }
    }
}
