package org.usp4j.comm;

/** The kinds of collective traffic usp4j accounts for, named as in --report JSON. */
public enum TrafficKind {
    ALL_TO_ALL("all_to_all"),
    P2P("p2p"),
    ALL_GATHER("all_gather");

    private final String jsonName;

    TrafficKind(String jsonName) {
        this.jsonName = jsonName;
    }

    public String jsonName() {
        return jsonName;
    }
}
