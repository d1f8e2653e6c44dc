package org.usp4j.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Head-dim rows of a host {@code bshd} tensor, read into and written from float arrays with the dtype
 * conversion done once per row. The row at (b, s, h) is {@code headDim} contiguous elements; the other
 * three strides are arbitrary, so slices of larger tensors work without copies. Safe for concurrent
 * use: callers bring their own scratch ({@code shorts}, at least headDim long, for 16-bit types and
 * {@code floats} for accumulating writes).
 */
final class TensorRows {

    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private static final int LANES = TileGemm.LANES;
    private static final VectorSpecies<Integer> INT_SPECIES = TileGemm.SPECIES.withLanes(int.class);
    private static final VectorSpecies<Short> SHORT_SPECIES =
            VectorSpecies.of(short.class, VectorShape.forBitSize(LANES * Short.SIZE));

    private final MemorySegment segment;
    private final DType dtype;
    private final int headDim;
    private final long base;     // bytes
    private final long batchStride;
    private final long seqStride;
    private final long headStride;

    TensorRows(Tensor t) {
        this.segment = t.segment();
        this.dtype = t.dtype();
        this.headDim = Math.toIntExact(t.size(3));
        long size = dtype.byteSize();
        this.base = t.offset() * size;
        this.batchStride = t.stride(0) * size;
        this.seqStride = t.stride(1) * size;
        this.headStride = t.stride(2) * size;
    }

    private long offset(int b, int s, int h) {
        return base + b * batchStride + s * seqStride + h * headStride;
    }

    /** dst[off .. off + headDim) = scale * row(b, s, h). */
    void read(int b, int s, int h, float[] dst, int off, float scale, short[] shorts) {
        long at = offset(b, s, h);
        int d = headDim;
        switch (dtype) {
            case F32 -> {
                MemorySegment.copy(segment, FLOAT_LE, at, dst, off, d);
                if (scale != 1f) {
                    for (int x = 0; x < d; x++) {
                        dst[off + x] *= scale;
                    }
                }
            }
            case BF16 -> readBf16(at, dst, off, scale, shorts);
            case F16 -> {
                MemorySegment.copy(segment, SHORT_LE, at, shorts, 0, d);
                for (int x = 0; x < d; x++) {
                    dst[off + x] = Float.float16ToFloat(shorts[x]) * scale;
                }
            }
        }
    }

    /**
     * bfloat16 is the top half of a float32: widen the shorts to ints (the sign-extended high bits are
     * shifted out) and shift them up by 16, a vector at a time.
     */
    private void readBf16(long at, float[] dst, int off, float scale, short[] shorts) {
        int d = headDim;
        int x = 0;
        for (; x + LANES <= d; x += LANES) {
            ShortVector bits = ShortVector.fromMemorySegment(SHORT_SPECIES, segment, at + 2L * x, ByteOrder.LITTLE_ENDIAN);
            FloatVector values = ((IntVector) bits.convertShape(VectorOperators.S2I, INT_SPECIES, 0))
                    .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
            values.mul(scale).intoArray(dst, off + x);
        }
        if (x < d) {
            MemorySegment.copy(segment, SHORT_LE, at + 2L * x, shorts, 0, d - x);
            for (int i = 0; x < d; x++, i++) {
                dst[off + x] = Float.intBitsToFloat(shorts[i] << 16) * scale;
            }
        }
    }

    /**
     * row(b, s, h) = src[off ..] (or += with {@code accumulate}), rounded to nearest-even for 16-bit
     * types. {@code floats} is scratch for the accumulating read.
     */
    void write(int b, int s, int h, float[] src, int off, boolean accumulate, short[] shorts, float[] floats) {
        int d = headDim;
        float[] values = src;
        int from = off;
        if (accumulate) {
            read(b, s, h, floats, 0, 1f, shorts);
            for (int x = 0; x < d; x++) {
                floats[x] += src[off + x];
            }
            values = floats;
            from = 0;
        }
        long at = offset(b, s, h);
        switch (dtype) {
            case F32 -> MemorySegment.copy(values, from, segment, FLOAT_LE, at, d);
            case BF16 -> {
                for (int x = 0; x < d; x++) {
                    shorts[x] = DType.floatToBf16(values[from + x]);
                }
                MemorySegment.copy(shorts, 0, segment, SHORT_LE, at, d);
            }
            case F16 -> {
                for (int x = 0; x < d; x++) {
                    shorts[x] = Float.floatToFloat16(values[from + x]);
                }
                MemorySegment.copy(shorts, 0, segment, SHORT_LE, at, d);
            }
        }
    }
}
