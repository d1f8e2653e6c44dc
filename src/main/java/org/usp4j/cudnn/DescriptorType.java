package org.usp4j.cudnn;

import org.usp4j.nativelib.LibraryVersion;

/**
 * Backend descriptor types ({@code cudnnBackendDescriptorType_t}). Creating a type newer than the loaded cuDNN is refused before the native call.
 * Values are those of {@code cudnnBackendDescriptorType_t} in usp4j's {@code headers/cudnn/cudnn_api.h}.
 */
public enum DescriptorType {
    POINTWISE(0, LibraryVersion.of(9, 0, 0)),
    CONVOLUTION(1, LibraryVersion.of(9, 0, 0)),
    ENGINE(2, LibraryVersion.of(9, 0, 0)),
    ENGINECFG(3, LibraryVersion.of(9, 0, 0)),
    ENGINEHEUR(4, LibraryVersion.of(9, 0, 0)),
    EXECUTION_PLAN(5, LibraryVersion.of(9, 0, 0)),
    INTERMEDIATE_INFO(6, LibraryVersion.of(9, 0, 0)),
    KNOB_CHOICE(7, LibraryVersion.of(9, 0, 0)),
    KNOB_INFO(8, LibraryVersion.of(9, 0, 0)),
    LAYOUT_INFO(9, LibraryVersion.of(9, 0, 0)),
    OPERATION_CONVOLUTION_FORWARD(10, LibraryVersion.of(9, 0, 0)),
    OPERATION_CONVOLUTION_BACKWARD_FILTER(11, LibraryVersion.of(9, 0, 0)),
    OPERATION_CONVOLUTION_BACKWARD_DATA(12, LibraryVersion.of(9, 0, 0)),
    OPERATION_POINTWISE(13, LibraryVersion.of(9, 0, 0)),
    OPERATION_GEN_STATS(14, LibraryVersion.of(9, 0, 0)),
    OPERATIONGRAPH(15, LibraryVersion.of(9, 0, 0)),
    VARIANT_PACK(16, LibraryVersion.of(9, 0, 0)),
    TENSOR(17, LibraryVersion.of(9, 0, 0)),
    MATMUL(18, LibraryVersion.of(9, 0, 0)),
    OPERATION_MATMUL(19, LibraryVersion.of(9, 0, 0)),
    OPERATION_BN_FINALIZE_STATISTICS(20, LibraryVersion.of(9, 0, 0)),
    REDUCTION(21, LibraryVersion.of(9, 0, 0)),
    OPERATION_REDUCTION(22, LibraryVersion.of(9, 0, 0)),
    OPERATION_BN_BWD_WEIGHTS(23, LibraryVersion.of(9, 0, 0)),
    RESAMPLE(24, LibraryVersion.of(9, 0, 0)),
    OPERATION_RESAMPLE_FWD(25, LibraryVersion.of(9, 0, 0)),
    OPERATION_RESAMPLE_BWD(26, LibraryVersion.of(9, 0, 0)),
    OPERATION_CONCAT(27, LibraryVersion.of(9, 0, 0)),
    OPERATION_SIGNAL(28, LibraryVersion.of(9, 0, 0)),
    OPERATION_NORM_FORWARD(29, LibraryVersion.of(9, 0, 0)),
    OPERATION_NORM_BACKWARD(30, LibraryVersion.of(9, 0, 0)),
    OPERATION_RESHAPE(31, LibraryVersion.of(9, 0, 0)),
    RNG(32, LibraryVersion.of(9, 0, 0)),
    OPERATION_RNG(33, LibraryVersion.of(9, 0, 0)),
    /** Since cuDNN 9.4 */
    KERNEL_CACHE(34, LibraryVersion.of(9, 4, 0)),
    /** Since cuDNN 9.4 */
    OPERATION_PAGED_CACHE_LOAD(35, LibraryVersion.of(9, 4, 0)),
    /** Since cuDNN 9.7 */
    OPERATION_BLOCK_SCALE_QUANTIZE(36, LibraryVersion.of(9, 7, 0)),
    /** Since cuDNN 9.7 */
    OPERATION_BLOCK_SCALE_DEQUANTIZE(37, LibraryVersion.of(9, 7, 0)),
    /** Since cuDNN 9.8 */
    DEVICEPROP(38, LibraryVersion.of(9, 8, 0)),
    /** Since cuDNN 9.10 */
    OPERATION_EXPAND_BAND_MATRIX(39, LibraryVersion.of(9, 10, 0)),
    /** Since cuDNN 9.10 */
    OPERATION_CONTRACT_BAND_MATRIX(40, LibraryVersion.of(9, 10, 0)),
    /** Since cuDNN 9.13 (frontend: 9.13.1) */
    OPERATION_SDPA_FWD(41, LibraryVersion.of(9, 13, 0)),
    /** Since cuDNN 9.15 */
    OPERATION_MOE_GROUPED_MATMUL(42, LibraryVersion.of(9, 15, 0)),
    /** Since cuDNN 9.17; no engine serves it so far */
    OPERATION_SDPA_BWD(43, LibraryVersion.of(9, 17, 0)),
    /** Since cuDNN 9.20 (frontend: 9.21) */
    OPERATION_DIAGONAL_BAND_MASK(44, LibraryVersion.of(9, 20, 0)),
    /** Since cuDNN 9.20 (frontend: 9.21) */
    OPERATION_SOFTMAX(45, LibraryVersion.of(9, 20, 0));

    private final int code;
    private final LibraryVersion since;

    DescriptorType(int code, LibraryVersion since) {
        this.code = code;
        this.since = since;
    }

    /** The numeric value passed to cuDNN. */
    public int code() {
        return code;
    }

    /** The C enumerator name, e.g. {@code CUDNN_BACKEND_POINTWISE_DESCRIPTOR}. */
    public String cName() {
        return "CUDNN_BACKEND_" + name() + "_DESCRIPTOR";
    }

    /** The cuDNN release that introduced it (9.0.0 for everything in the first 9.x release). */
    public LibraryVersion since() {
        return since;
    }
}
