package org.usp4j.cli;

import java.nio.file.Files;
import java.nio.file.Path;

/** Checks, before any work, that an output file can be created where the user asked for it. */
final class OutputPaths {

    private OutputPaths() {
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
