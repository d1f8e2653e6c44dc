package org.usp4j.cudnn;

/**
 * Engine heuristic modes ({@code cudnnBackendHeurMode_t}); A is what the frontend uses, FALLBACK a second try.
 * Values are those of {@code cudnnBackendHeurMode_t} in usp4j's {@code headers/cudnn/cudnn_api.h}.
 */
public enum HeuristicMode {
    INSTANT(0),
    B(1),
    FALLBACK(2),
    A(3);

    private final int code;

    HeuristicMode(int code) {
        this.code = code;
    }

    /** The numeric value passed to cuDNN. */
    public int code() {
        return code;
    }

    /** The C enumerator name, e.g. {@code CUDNN_HEUR_MODE_INSTANT}. */
    public String cName() {
        return "CUDNN_HEUR_MODE_" + name();
    }
}
