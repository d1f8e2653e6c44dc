package org.usp4j.cudnn;

/**
 * Numerical properties an engine reports ({@code cudnnBackendNumericalNote_t}).
 * Values are those of {@code cudnnBackendNumericalNote_t} in usp4j's {@code headers/cudnn/cudnn_api.h}.
 */
public enum NumericalNote {
    TENSOR_CORE(0),
    DOWN_CONVERT_INPUTS(1),
    REDUCED_PRECISION_REDUCTION(2),
    FFT(3),
    NONDETERMINISTIC(4),
    WINOGRAD(5),
    WINOGRAD_TILE_4x4(6),
    WINOGRAD_TILE_6x6(7),
    WINOGRAD_TILE_13x13(8),
    /** Since cuDNN 9.1 */
    STRICT_NAN_PROP(9);

    private final int code;

    NumericalNote(int code) {
        this.code = code;
    }

    /** The numeric value passed to cuDNN. */
    public int code() {
        return code;
    }

    /** The C enumerator name, e.g. {@code CUDNN_NUMERICAL_NOTE_TENSOR_CORE}. */
    public String cName() {
        return "CUDNN_NUMERICAL_NOTE_" + name();
    }
}
