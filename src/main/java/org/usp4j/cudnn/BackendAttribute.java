package org.usp4j.cudnn;

import org.usp4j.nativelib.LibraryVersion;

/**
 * Backend attribute names ({@code cudnnBackendAttributeName_t}), prefixed by the descriptor they belong to. Setting one newer than the loaded cuDNN is refused before the native call.
 * Values are those of {@code cudnnBackendAttributeName_t} in usp4j's {@code headers/cudnn/cudnn_api.h}.
 */
public enum BackendAttribute {
    POINTWISE_MODE(0, LibraryVersion.of(9, 0, 0)),
    POINTWISE_MATH_PREC(1, LibraryVersion.of(9, 0, 0)),
    POINTWISE_NAN_PROPAGATION(2, LibraryVersion.of(9, 0, 0)),
    POINTWISE_RELU_LOWER_CLIP(3, LibraryVersion.of(9, 0, 0)),
    POINTWISE_RELU_UPPER_CLIP(4, LibraryVersion.of(9, 0, 0)),
    POINTWISE_RELU_LOWER_CLIP_SLOPE(5, LibraryVersion.of(9, 0, 0)),
    POINTWISE_ELU_ALPHA(6, LibraryVersion.of(9, 0, 0)),
    POINTWISE_SOFTPLUS_BETA(7, LibraryVersion.of(9, 0, 0)),
    POINTWISE_SWISH_BETA(8, LibraryVersion.of(9, 0, 0)),
    POINTWISE_AXIS(9, LibraryVersion.of(9, 0, 0)),
    ENGINEHEUR_MODE(200, LibraryVersion.of(9, 0, 0)),
    ENGINEHEUR_OPERATION_GRAPH(201, LibraryVersion.of(9, 0, 0)),
    ENGINEHEUR_RESULTS(202, LibraryVersion.of(9, 0, 0)),
    ENGINEHEUR_SM_COUNT_TARGET(203, LibraryVersion.of(9, 0, 0)),
    ENGINECFG_ENGINE(300, LibraryVersion.of(9, 0, 0)),
    ENGINECFG_INTERMEDIATE_INFO(301, LibraryVersion.of(9, 0, 0)),
    ENGINECFG_KNOB_CHOICES(302, LibraryVersion.of(9, 0, 0)),
    ENGINECFG_WORKSPACE_SIZE(303, LibraryVersion.of(9, 0, 0)),
    ENGINECFG_SHARED_MEMORY_USED(304, LibraryVersion.of(9, 0, 0)),
    /** deprecated */
    EXECUTION_PLAN_HANDLE(400, LibraryVersion.of(9, 0, 0)),
    EXECUTION_PLAN_ENGINE_CONFIG(401, LibraryVersion.of(9, 0, 0)),
    EXECUTION_PLAN_WORKSPACE_SIZE(402, LibraryVersion.of(9, 0, 0)),
    EXECUTION_PLAN_COMPUTED_INTERMEDIATE_UIDS(403, LibraryVersion.of(9, 0, 0)),
    EXECUTION_PLAN_RUN_ONLY_INTERMEDIATE_UIDS(404, LibraryVersion.of(9, 0, 0)),
    EXECUTION_PLAN_JSON_REPRESENTATION(405, LibraryVersion.of(9, 0, 0)),
    /** Since cuDNN 9.4 */
    EXECUTION_PLAN_KERNEL_CACHE(406, LibraryVersion.of(9, 4, 0)),
    KNOB_CHOICE_KNOB_TYPE(600, LibraryVersion.of(9, 0, 0)),
    KNOB_CHOICE_KNOB_VALUE(601, LibraryVersion.of(9, 0, 0)),
    OPERATION_POINTWISE_PW_DESCRIPTOR(750, LibraryVersion.of(9, 0, 0)),
    OPERATION_POINTWISE_XDESC(751, LibraryVersion.of(9, 0, 0)),
    OPERATION_POINTWISE_BDESC(752, LibraryVersion.of(9, 0, 0)),
    OPERATION_POINTWISE_YDESC(753, LibraryVersion.of(9, 0, 0)),
    OPERATION_POINTWISE_ALPHA1(754, LibraryVersion.of(9, 0, 0)),
    OPERATION_POINTWISE_ALPHA2(755, LibraryVersion.of(9, 0, 0)),
    OPERATION_POINTWISE_DXDESC(756, LibraryVersion.of(9, 0, 0)),
    OPERATION_POINTWISE_DYDESC(757, LibraryVersion.of(9, 0, 0)),
    OPERATION_POINTWISE_TDESC(758, LibraryVersion.of(9, 0, 0)),
    /** required before 9.8, deprecated after */
    OPERATIONGRAPH_HANDLE(800, LibraryVersion.of(9, 0, 0)),
    OPERATIONGRAPH_OPS(801, LibraryVersion.of(9, 0, 0)),
    OPERATIONGRAPH_ENGINE_GLOBAL_COUNT(802, LibraryVersion.of(9, 0, 0)),
    /** Since cuDNN 9.4 */
    OPERATIONGRAPH_IS_DYNAMIC_SHAPE_ENABLED(803, LibraryVersion.of(9, 4, 0)),
    /** Since cuDNN 9.6 */
    OPERATIONGRAPH_IS_SAME_TOPOLOGY(804, LibraryVersion.of(9, 6, 0)),
    TENSOR_BYTE_ALIGNMENT(900, LibraryVersion.of(9, 0, 0)),
    TENSOR_DATA_TYPE(901, LibraryVersion.of(9, 0, 0)),
    TENSOR_DIMENSIONS(902, LibraryVersion.of(9, 0, 0)),
    TENSOR_STRIDES(903, LibraryVersion.of(9, 0, 0)),
    TENSOR_VECTOR_COUNT(904, LibraryVersion.of(9, 0, 0)),
    TENSOR_VECTORIZED_DIMENSION(905, LibraryVersion.of(9, 0, 0)),
    TENSOR_UNIQUE_ID(906, LibraryVersion.of(9, 0, 0)),
    TENSOR_IS_VIRTUAL(907, LibraryVersion.of(9, 0, 0)),
    TENSOR_IS_BY_VALUE(908, LibraryVersion.of(9, 0, 0)),
    TENSOR_REORDERING_MODE(909, LibraryVersion.of(9, 0, 0)),
    TENSOR_RAGGED_OFFSET_DESC(913, LibraryVersion.of(9, 0, 0)),
    VARIANT_PACK_UNIQUE_IDS(1000, LibraryVersion.of(9, 0, 0)),
    VARIANT_PACK_DATA_POINTERS(1001, LibraryVersion.of(9, 0, 0)),
    VARIANT_PACK_INTERMEDIATES(1002, LibraryVersion.of(9, 0, 0)),
    VARIANT_PACK_WORKSPACE(1003, LibraryVersion.of(9, 0, 0)),
    KNOB_INFO_TYPE(1200, LibraryVersion.of(9, 0, 0)),
    KNOB_INFO_MAXIMUM_VALUE(1201, LibraryVersion.of(9, 0, 0)),
    KNOB_INFO_MINIMUM_VALUE(1202, LibraryVersion.of(9, 0, 0)),
    KNOB_INFO_STRIDE(1203, LibraryVersion.of(9, 0, 0)),
    ENGINE_OPERATION_GRAPH(1300, LibraryVersion.of(9, 0, 0)),
    ENGINE_GLOBAL_INDEX(1301, LibraryVersion.of(9, 0, 0)),
    ENGINE_KNOB_INFO(1302, LibraryVersion.of(9, 0, 0)),
    ENGINE_NUMERICAL_NOTE(1303, LibraryVersion.of(9, 0, 0)),
    ENGINE_LAYOUT_INFO(1304, LibraryVersion.of(9, 0, 0)),
    ENGINE_BEHAVIOR_NOTE(1305, LibraryVersion.of(9, 0, 0)),
    ENGINE_SM_COUNT_TARGET(1306, LibraryVersion.of(9, 0, 0)),
    /** Since cuDNN 9.8 */
    ENGINE_DEVICEPROP(1307, LibraryVersion.of(9, 8, 0)),
    MATMUL_COMP_TYPE(1500, LibraryVersion.of(9, 0, 0)),
    MATMUL_PADDING_VALUE(1503, LibraryVersion.of(9, 0, 0)),
    OPERATION_MATMUL_ADESC(1520, LibraryVersion.of(9, 0, 0)),
    OPERATION_MATMUL_BDESC(1521, LibraryVersion.of(9, 0, 0)),
    OPERATION_MATMUL_CDESC(1522, LibraryVersion.of(9, 0, 0)),
    OPERATION_MATMUL_DESC(1523, LibraryVersion.of(9, 0, 0)),
    OPERATION_MATMUL_IRREGULARLY_STRIDED_BATCH_COUNT(1524, LibraryVersion.of(9, 0, 0)),
    OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC(1525, LibraryVersion.of(9, 0, 0)),
    OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC(1526, LibraryVersion.of(9, 0, 0)),
    OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC(1527, LibraryVersion.of(9, 0, 0)),
    REDUCTION_OPERATOR(1600, LibraryVersion.of(9, 0, 0)),
    REDUCTION_COMP_TYPE(1601, LibraryVersion.of(9, 0, 0)),
    /** Since cuDNN 9.11 */
    REDUCTION_IS_DETERMINISTIC(1602, LibraryVersion.of(9, 11, 0)),
    OPERATION_REDUCTION_XDESC(1610, LibraryVersion.of(9, 0, 0)),
    OPERATION_REDUCTION_YDESC(1611, LibraryVersion.of(9, 0, 0)),
    OPERATION_REDUCTION_DESC(1612, LibraryVersion.of(9, 0, 0)),
    OPERATION_RESHAPE_XDESC(2200, LibraryVersion.of(9, 0, 0)),
    OPERATION_RESHAPE_YDESC(2201, LibraryVersion.of(9, 0, 0)),
    /** Since cuDNN 9.22 */
    OPERATION_RESHAPE_MODE(2202, LibraryVersion.of(9, 22, 0)),
    /** Since cuDNN 9.8 */
    DEVICEPROP_DEVICE_ID(2700, LibraryVersion.of(9, 8, 0)),
    /** Since cuDNN 9.8 */
    DEVICEPROP_HANDLE(2701, LibraryVersion.of(9, 8, 0)),
    /** Since cuDNN 9.8 */
    DEVICEPROP_JSON_REPRESENTATION(2702, LibraryVersion.of(9, 8, 0)),
    /** Since cuDNN 9.13 */
    OPERATION_SDPA_FWD_QDESC(2800, LibraryVersion.of(9, 13, 0)),
    /** Since cuDNN 9.13 */
    OPERATION_SDPA_FWD_KDESC(2801, LibraryVersion.of(9, 13, 0)),
    /** Since cuDNN 9.13 */
    OPERATION_SDPA_FWD_VDESC(2802, LibraryVersion.of(9, 13, 0)),
    /** Since cuDNN 9.13 */
    OPERATION_SDPA_FWD_ODESC(2803, LibraryVersion.of(9, 13, 0)),
    /** Since cuDNN 9.13 */
    OPERATION_SDPA_FWD_STATSDESC(2804, LibraryVersion.of(9, 13, 0)),
    /** Since cuDNN 9.13 */
    OPERATION_SDPA_FWD_SCALEDESC(2805, LibraryVersion.of(9, 13, 0)),
    /** Since cuDNN 9.14 */
    OPERATION_SDPA_FWD_BLOCK_MASK_DESC(2806, LibraryVersion.of(9, 14, 0)),
    /** Since cuDNN 9.15 */
    OPERATION_SDPA_FWD_PAGE_TABLE_KDESC(2807, LibraryVersion.of(9, 15, 0)),
    /** Since cuDNN 9.15 */
    OPERATION_SDPA_FWD_PAGE_TABLE_VDESC(2808, LibraryVersion.of(9, 15, 0)),
    /** Since cuDNN 9.15 */
    OPERATION_SDPA_FWD_SEQ_LEN_QDESC(2809, LibraryVersion.of(9, 15, 0)),
    /** Since cuDNN 9.15 */
    OPERATION_SDPA_FWD_SEQ_LEN_KVDESC(2810, LibraryVersion.of(9, 15, 0)),
    /** Since cuDNN 9.21 */
    OPERATION_SDPA_FWD_SUBGRAPH(2811, LibraryVersion.of(9, 21, 0)),
    /** Since cuDNN 9.21 */
    OPERATION_SDPA_FWD_SUBGRAPH_INPUT_UID(2812, LibraryVersion.of(9, 21, 0)),
    /** Since cuDNN 9.21 */
    OPERATION_SDPA_FWD_SUBGRAPH_OUTPUT_UID(2813, LibraryVersion.of(9, 21, 0)),
    /** Since cuDNN 9.21 */
    OPERATION_SDPA_FWD_SOFTMAX_DESC(2814, LibraryVersion.of(9, 21, 0)),
    /** Since cuDNN 9.21 */
    OPERATION_SDPA_FWD_DROPOUT_SEED_DESC(2815, LibraryVersion.of(9, 21, 0)),
    /** Since cuDNN 9.21 */
    OPERATION_SDPA_FWD_DROPOUT_OFFSET_DESC(2816, LibraryVersion.of(9, 21, 0)),
    /** Since cuDNN 9.21 */
    OPERATION_SDPA_FWD_DROPOUT_RNG_DUMP_DESC(2817, LibraryVersion.of(9, 21, 0)),
    /** Since cuDNN 9.21 */
    OPERATION_SDPA_FWD_DROPOUT_PROBABILITY(2818, LibraryVersion.of(9, 21, 0)),
    /** Since cuDNN 9.22 */
    OPERATION_SDPA_FWD_UNFUSE_FMA(2819, LibraryVersion.of(9, 22, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_QDESC(2851, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_KDESC(2852, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_VDESC(2853, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_ODESC(2854, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_STATSDESC(2855, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_SCALEDESC(2856, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_SEQ_LEN_QDESC(2857, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_SEQ_LEN_KVDESC(2858, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_DQDESC(2859, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_DKDESC(2860, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_DVDESC(2861, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.17 */
    OPERATION_SDPA_BWD_DODDESC(2862, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_DIAGONAL_BAND_MASK_XDESC(3000, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_DIAGONAL_BAND_MASK_SEQ_LEN_KVDESC(3001, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_DIAGONAL_BAND_MASK_SEQ_LEN_QDESC(3002, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_DIAGONAL_BAND_MASK_LEFT_BOUND_DESC(3003, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_DIAGONAL_BAND_MASK_SHIFT_RIGHT_BOUND_DESC(3004, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_DIAGONAL_BAND_MASK_BDESC(3005, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_DIAGONAL_BAND_MASK_YDESC(3006, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_DIAGONAL_BAND_MASK_COMPARISON_MODE(3007, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_SOFTMAX_XDESC(3100, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_SOFTMAX_YDESC(3101, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_SOFTMAX_STATS_DESC(3102, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_SOFTMAX_MAX_DESC(3103, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_SOFTMAX_SUM_EXP_DESC(3104, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 */
    OPERATION_SOFTMAX_SINK_DESC(3105, LibraryVersion.of(9, 20, 0));

    private final int code;
    private final LibraryVersion since;

    BackendAttribute(int code, LibraryVersion since) {
        this.code = code;
        this.since = since;
    }

    /** The numeric value passed to cuDNN. */
    public int code() {
        return code;
    }

    /** The C enumerator name, e.g. {@code CUDNN_ATTR_POINTWISE_MODE}. */
    public String cName() {
        return "CUDNN_ATTR_" + name();
    }

    /** The cuDNN release that introduced it (9.0.0 for everything in the first 9.x release). */
    public LibraryVersion since() {
        return since;
    }
}
