package org.usp4j.cli;

import java.util.Locale;

/** The {@code --backend} choices; {@link #AUTO} is CUDA where a GPU is usable, else CPU. */
enum BackendKind {
    AUTO,
    CPU,
    CUDA;

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT); // how the CLI spells it
    }

    static final class Converter extends LowercaseEnumConverter<BackendKind> {
        Converter() {
            super(BackendKind.class);
        }
    }
}
