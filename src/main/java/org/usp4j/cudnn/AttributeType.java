package org.usp4j.cudnn;

/**
 * Element types of backend attribute values ({@code cudnnBackendAttributeType_t}).
 * Values are those of {@code cudnnBackendAttributeType_t} in usp4j's {@code headers/cudnn/cudnn_api.h}.
 */
public enum AttributeType {
    HANDLE(0),
    DATA_TYPE(1),
    BOOLEAN(2),
    INT64(3),
    FLOAT(4),
    DOUBLE(5),
    VOID_PTR(6),
    CONVOLUTION_MODE(7),
    HEUR_MODE(8),
    KNOB_TYPE(9),
    NAN_PROPOGATION(10),
    NUMERICAL_NOTE(11),
    LAYOUT_TYPE(12),
    ATTRIB_NAME(13),
    POINTWISE_MODE(14),
    BACKEND_DESCRIPTOR(15),
    GENSTATS_MODE(16),
    BN_FINALIZE_STATS_MODE(17),
    REDUCTION_OPERATOR_TYPE(18),
    BEHAVIOR_NOTE(19),
    TENSOR_REORDERING_MODE(20),
    RESAMPLE_MODE(21),
    PADDING_MODE(22),
    INT32(23),
    CHAR(24),
    SIGNAL_MODE(25),
    FRACTION(26),
    NORM_MODE(27),
    NORM_FWD_PHASE(28),
    RNG_DISTRIBUTION(29),
    /** Since cuDNN 9.15 */
    MOE_GROUPED_MATMUL_MODE(30),
    /** Since cuDNN 9.22 */
    RESHAPE_MODE(31);

    private final int code;

    AttributeType(int code) {
        this.code = code;
    }

    /** The numeric value passed to cuDNN. */
    public int code() {
        return code;
    }

    /** The C enumerator name, e.g. {@code CUDNN_TYPE_HANDLE}. */
    public String cName() {
        return "CUDNN_TYPE_" + name();
    }
}
