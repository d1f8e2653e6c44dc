package org.usp4j.comm;

/**
 * The kinds of collective traffic usp4j accounts for, named as in --report JSON. The first three are
 * always reported (readers of the first reports expect them); later kinds appear where a strategy uses
 * them.
 */
public enum TrafficKind {
    ALL_TO_ALL("all_to_all", true),
    P2P("p2p", true),
    ALL_GATHER("all_gather", true),
    REDUCE_SCATTER("reduce_scatter", false);

    private final String jsonName;
    private final boolean alwaysReported;

    TrafficKind(String jsonName, boolean alwaysReported) {
        this.jsonName = jsonName;
        this.alwaysReported = alwaysReported;
    }

    public String jsonName() {
        return jsonName;
    }

    /** Whether reports list this kind even when nothing of it was sent. */
    public boolean alwaysReported() {
        return alwaysReported;
    }
}
