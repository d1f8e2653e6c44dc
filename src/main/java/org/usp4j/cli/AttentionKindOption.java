package org.usp4j.cli;

import java.util.Locale;
import picocli.CommandLine;
import picocli.CommandLine.ParameterException;

/**
 * The {@code --attention} choices: softmax attention (USP: Ulysses around ring attention) or linear
 * attention (Ulysses around LASP-2), and the checks that go with linear attention.
 */
enum AttentionKindOption {
    SOFTMAX,
    LINEAR;

    /**
     * Usage errors (exit 2) of the options that depend on the kind: {@code --decay} belongs to causal
     * linear attention; linear attention deals the sequence contiguously (its work is the same on every
     * block, so zigzag and striped have nothing to balance) and always runs LASP-2.
     */
    void check(CommandLine cmd, boolean causal, Double decay, LayoutOption layout, boolean ringAlgoGiven) {
        checkDecay(cmd, causal, decay);
        if (this != LINEAR) {
            return;
        }
        if (layout != LayoutOption.CONTIGUOUS) {
            throw new ParameterException(cmd, "--attention linear deals the sequence contiguously (every block costs "
                    + "the same); leave --layout " + layout + " out");
        }
        if (ringAlgoGiven) {
            throw new ParameterException(cmd, "--ring-algo chooses a softmax ring algorithm; --attention linear always "
                    + "runs LASP-2");
        }
    }

    /** The usage errors of {@code --decay}: only with causal linear attention, and in (0, 1]. */
    void checkDecay(CommandLine cmd, boolean causal, Double decay) {
        if (decay != null && this != LINEAR) {
            throw new ParameterException(cmd, "--decay is for --attention linear");
        }
        if (this != LINEAR) {
            return;
        }
        if (decay != null && !causal) {
            throw new ParameterException(cmd, "--decay needs --causal (non-causal linear attention has no order to decay along)");
        }
        if (decay != null && !(decay > 0 && decay <= 1)) {
            throw new ParameterException(cmd, "--decay must be in (0, 1], got " + decay);
        }
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }

    static final class Converter extends LowercaseEnumConverter<AttentionKindOption> {
        Converter() {
            super(AttentionKindOption.class);
        }
    }
}
