package org.usp4j.cudnn;

/**
 * Behaviour properties an engine reports ({@code cudnnBackendBehaviorNote_t}).
 * Values are those of {@code cudnnBackendBehaviorNote_t} in usp4j's {@code headers/cudnn/cudnn_api.h}.
 */
public enum BehaviorNote {
    RUNTIME_COMPILATION(0),
    REQUIRES_FILTER_INT8x32_REORDER(1),
    REQUIRES_BIAS_INT8x32_REORDER(2),
    /** Since cuDNN 9.5 */
    SUPPORTS_CUDA_GRAPH_NATIVE_API(3),
    /** Since cuDNN 9.15 */
    CUBLASLT_DEPENDENCY(4);

    private final int code;

    BehaviorNote(int code) {
        this.code = code;
    }

    /** The numeric value passed to cuDNN. */
    public int code() {
        return code;
    }

    /** The C enumerator name, e.g. {@code CUDNN_BEHAVIOR_NOTE_RUNTIME_COMPILATION}. */
    public String cName() {
        return "CUDNN_BEHAVIOR_NOTE_" + name();
    }
}
