package org.usp4j.cli;

import java.util.Locale;
import org.usp4j.sp.SequenceLayout;

/** The {@code --layout} choices, spelled as on the command line. */
enum LayoutOption {
    CONTIGUOUS(SequenceLayout.CONTIGUOUS),
    ZIGZAG(SequenceLayout.ZIGZAG),
    STRIPED(SequenceLayout.STRIPED);

    private final SequenceLayout layout;

    LayoutOption(SequenceLayout layout) {
        this.layout = layout;
    }

    SequenceLayout layout() {
        return layout;
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }

    static final class Converter extends LowercaseEnumConverter<LayoutOption> {
        Converter() {
            super(LayoutOption.class);
        }
    }
}
