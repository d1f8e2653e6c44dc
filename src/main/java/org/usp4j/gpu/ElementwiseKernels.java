package org.usp4j.gpu;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.function.Supplier;
import org.usp4j.cuda.CudaStream;
import org.usp4j.cuda.Dim3;
import org.usp4j.cuda.KernelArg;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * The ring's element-wise GPU work: strided copy with dtype conversion, fill, add and the
 * log-sum-exp merge, from our own CUDA C (src/main/cuda/elementwise.cu) shipped as PTX and loaded
 * through the runtime's library API (once per device, by {@link DeviceCalls#kernel}). Each operation
 * is one launch on the caller's stream.
 */
public final class ElementwiseKernels {

    private static final String PTX_RESOURCE = "/org/usp4j/cuda/elementwise.ptx";
    private static final int THREADS = 256;

    private final DeviceCalls calls;
    private final DeviceCalls.Kernel copy;
    private final DeviceCalls.Kernel fill;
    private final DeviceCalls.Kernel add;
    private final DeviceCalls.Kernel merge;
    private final int maxBlocks;

    /** The kernels of the current device, loading them on first use. */
    ElementwiseKernels(DeviceCalls calls) {
        this.calls = calls;
        this.copy = calls.kernel("usp4j_copy");
        this.fill = calls.kernel("usp4j_fill");
        this.add = calls.kernel("usp4j_add");
        this.merge = calls.kernel("usp4j_merge_attention");
        this.maxBlocks = Math.max(1, calls.multiprocessorCount()) * 32;
    }

    static String ptx() {
        try (InputStream in = ElementwiseKernels.class.getResourceAsStream(PTX_RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException("PTX resource " + PTX_RESOURCE + " is missing from the jar");
            }
            return new String(in.readAllBytes(), StandardCharsets.US_ASCII);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** dst = src over any strides, converting the dtype. Both on the device. */
    public void copy(Tensor src, Tensor dst, CudaStream stream) {
        StridedGeometry g = StridedGeometry.of(src, dst);
        launchPerElement(copy, g.numel(), stream, () -> copyArgs(src, dst, g));
    }

    /** usp4j_copy(src, srcType, srcStride, dst, dstType, dstStride, shape, n). */
    static List<KernelArg> copyArgs(Tensor src, Tensor dst, StridedGeometry g) {
        return List.of(KernelArg.i64(src.deviceAddress()), KernelArg.i32(code(src.dtype())), KernelArg.i64s(g.paddedStrides(0)),
                KernelArg.i64(dst.deviceAddress()), KernelArg.i32(code(dst.dtype())), KernelArg.i64s(g.paddedStrides(1)),
                KernelArg.i64s(g.paddedShape()), KernelArg.i64(g.numel()));
    }

    /** dst = value everywhere. */
    public void fill(Tensor dst, float value, CudaStream stream) {
        StridedGeometry g = StridedGeometry.of(dst);
        launchPerElement(fill, g.numel(), stream, () -> fillArgs(dst, value, g));
    }

    /** usp4j_fill(dst, dstType, dstStride, shape, n, value). */
    static List<KernelArg> fillArgs(Tensor dst, float value, StridedGeometry g) {
        return List.of(KernelArg.i64(dst.deviceAddress()), KernelArg.i32(code(dst.dtype())), KernelArg.i64s(g.paddedStrides(0)),
                KernelArg.i64s(g.paddedShape()), KernelArg.i64(g.numel()), KernelArg.f32(value));
    }

    /** dst += src, in float32. */
    public void add(Tensor dst, Tensor src, CudaStream stream) {
        StridedGeometry g = StridedGeometry.of(dst, src);
        launchPerElement(add, g.numel(), stream, () -> addArgs(dst, src, g));
    }

    /** usp4j_add(dst, dstType, dstStride, src, srcType, srcStride, shape, n). */
    static List<KernelArg> addArgs(Tensor dst, Tensor src, StridedGeometry g) {
        return List.of(KernelArg.i64(dst.deviceAddress()), KernelArg.i32(code(dst.dtype())), KernelArg.i64s(g.paddedStrides(0)),
                KernelArg.i64(src.deviceAddress()), KernelArg.i32(code(src.dtype())), KernelArg.i64s(g.paddedStrides(1)),
                KernelArg.i64s(g.paddedShape()), KernelArg.i64(g.numel()));
    }

    /**
     * The log-sum-exp merge of {@link org.usp4j.backend.Backend#mergeAttention}: out [b,s,h,d] and lse
     * [b,h,s] float32 accumulators; blockOut [b,s,h,d] any dtype; blockLse [b,h,s] float32.
     */
    public void mergeAttention(Tensor out, Tensor lse, Tensor blockOut, Tensor blockLse, CudaStream stream) {
        long rows = out.size(0) * out.size(1) * out.size(2);
        launchPerElement(merge, rows * 32, stream, () -> mergeArgs(out, lse, blockOut, blockLse)); // a warp per row
    }

    /**
     * usp4j_merge_attention(out, outStride, lse, lseStride, blockOut, blockType, blockStride, blockLse,
     * blockLseStride, batch, seq, heads, headDim).
     */
    static List<KernelArg> mergeArgs(Tensor out, Tensor lse, Tensor blockOut, Tensor blockLse) {
        return List.of(KernelArg.i64(out.deviceAddress()), KernelArg.i64s(strides4(out)),
                KernelArg.i64(lse.deviceAddress()), KernelArg.i64s(strides4(lse)),
                KernelArg.i64(blockOut.deviceAddress()), KernelArg.i32(code(blockOut.dtype())), KernelArg.i64s(strides4(blockOut)),
                KernelArg.i64(blockLse.deviceAddress()), KernelArg.i64s(strides4(blockLse)),
                KernelArg.i64(out.size(0)), KernelArg.i64(out.size(1)), KernelArg.i64(out.size(2)), KernelArg.i64(out.size(3)));
    }

    /** A tensor's strides in the first slots of the kernels' 6-slot {@code Dims}. */
    private static long[] strides4(Tensor t) {
        long[] s = new long[StridedGeometry.MAX_RANK];
        for (int i = 0; i < t.rank(); i++) {
            s[i] = t.stride(i);
        }
        return s;
    }

    /** {@code threads} threads (grid-stride loops cap the grid); nothing is launched for none. */
    private void launchPerElement(DeviceCalls.Kernel kernel, long threads, CudaStream stream,
                                  Supplier<List<KernelArg>> args) {
        if (threads == 0) {
            return;
        }
        calls.launch(kernel, grid(threads), Dim3.of(THREADS), stream, args.get());
    }

    private Dim3 grid(long threads) {
        long blocks = (threads + THREADS - 1) / THREADS;
        return Dim3.of((int) Math.min(blocks, maxBlocks));
    }

    /** The kernels' dtype codes are {@link DType}'s ordinals. */
    private static int code(DType dtype) {
        return dtype.ordinal();
    }
}
