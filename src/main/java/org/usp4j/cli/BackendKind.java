package org.usp4j.cli;

import java.util.Locale;

/** The {@code --backend} choices. */
enum BackendKind {
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
