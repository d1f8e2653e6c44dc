package org.usp4j.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A file that is not a valid safetensors file: too short, an absurd header length, malformed header
 * JSON, an unknown dtype, or tensor offsets that do not fit the data. The message is one line and
 * names the file (when known) and the offending values.
 */
public final class SafetensorsFormatException extends IOException {

    private static final long serialVersionUID = 1L;

    private final transient Path file;
    private final String problem;

    public SafetensorsFormatException(String problem) {
        this(null, problem);
    }

    public SafetensorsFormatException(Path file, String problem) {
        super(file == null ? problem : file + ": " + problem);
        this.file = file;
        this.problem = problem;
    }

    /** The file that was refused, or null when the bytes did not come from a file. */
    public Path file() {
        return file;
    }

    /** What is wrong, without the file name. */
    public String problem() {
        return problem;
    }

    /** The same problem attributed to {@code path}. */
    SafetensorsFormatException in(Path path) {
        SafetensorsFormatException e = new SafetensorsFormatException(path, problem);
        e.initCause(getCause());
        return e;
    }
}
