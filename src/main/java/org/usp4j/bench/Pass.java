package org.usp4j.bench;

/** The two directions of an attention call, spelled as in benchmark output ("fwd", "bwd"). */
public enum Pass {
    FORWARD("fwd"),
    BACKWARD("bwd");

    private final String label;

    Pass(String label) {
        this.label = label;
    }

    public String label() {
        return label;
    }

    @Override
    public String toString() {
        return label;
    }
}
