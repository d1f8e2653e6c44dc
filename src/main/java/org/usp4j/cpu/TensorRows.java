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
 * use: callers bring their own scratch ({@code shorts}, at least headDim long).
 *
 * <p>F32 and BF16 rows move a vector at a time straight between the segment and the array (a bulk
 * {@code MemorySegment.copy} of one 256-byte row costs twice as much in call overhead); bfloat16 is the
 * top half of a float32, so widening is a shift and narrowing a rounding add and a shift. F16 goes
 * through the JDK's scalar conversions.
 */
final class TensorRows {

    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ByteOrder LE = ByteOrder.LITTLE_ENDIAN;
    private static final VectorSpecies<Float> SPECIES = TileGemm.SPECIES;
    private static final int LANES = TileGemm.LANES;
    private static final VectorSpecies<Integer> INT_SPECIES = SPECIES.withLanes(int.class);
    private static final VectorSpecies<Short> SHORT_SPECIES =
            VectorSpecies.of(short.class, VectorShape.forBitSize(LANES * Short.SIZE));

    private final MemorySegment segment;
    private final DType dtype;
    private final int headDim;
    private final int vectorEnd;  // headDim rounded down to whole vectors
    private final long base;      // bytes
    private final long batchStride;
    private final long seqStride;
    private final long headStride;

    TensorRows(Tensor t) {
        this.segment = t.segment();
        this.dtype = t.dtype();
        this.headDim = Math.toIntExact(t.size(3));
        this.vectorEnd = headDim / LANES * LANES;
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
        switch (dtype) {
            case F32 -> readF32(at, dst, off, scale);
            case BF16 -> readBf16(at, dst, off, scale);
            case F16 -> readF16(at, dst, off, scale, shorts);
        }
    }

    /**
     * row(b, s, h) = src[off ..] (or += with {@code accumulate}, summed in float32), rounded to
     * nearest-even for 16-bit types.
     */
    void write(int b, int s, int h, float[] src, int off, boolean accumulate, short[] shorts) {
        long at = offset(b, s, h);
        switch (dtype) {
            case F32 -> writeF32(at, src, off, accumulate);
            case BF16 -> writeBf16(at, src, off, accumulate);
            case F16 -> writeF16(at, src, off, accumulate, shorts);
        }
    }

    private void readF32(long at, float[] dst, int off, float scale) {
        int x = 0;
        for (; x < vectorEnd; x += LANES) {
            FloatVector.fromMemorySegment(SPECIES, segment, at + 4L * x, LE).mul(scale).intoArray(dst, off + x);
        }
        for (; x < headDim; x++) {
            dst[off + x] = segment.get(FLOAT_LE, at + 4L * x) * scale;
        }
    }

    private void writeF32(long at, float[] src, int off, boolean accumulate) {
        int x = 0;
        for (; x < vectorEnd; x += LANES) {
            long byteAt = at + 4L * x;
            FloatVector value = FloatVector.fromArray(SPECIES, src, off + x);
            if (accumulate) {
                value = value.add(FloatVector.fromMemorySegment(SPECIES, segment, byteAt, LE));
            }
            value.intoMemorySegment(segment, byteAt, LE);
        }
        for (; x < headDim; x++) {
            long byteAt = at + 4L * x;
            float value = src[off + x];
            segment.set(FLOAT_LE, byteAt, accumulate ? value + segment.get(FLOAT_LE, byteAt) : value);
        }
    }

    /** Widens the shorts to ints (the sign-extended high bits are shifted out) and shifts them up by 16. */
    private void readBf16(long at, float[] dst, int off, float scale) {
        int x = 0;
        for (; x < vectorEnd; x += LANES) {
            bf16Vector(at + 2L * x).mul(scale).intoArray(dst, off + x);
        }
        for (; x < headDim; x++) {
            dst[off + x] = DType.bf16ToFloat(segment.get(SHORT_LE, at + 2L * x)) * scale;
        }
    }

    private FloatVector bf16Vector(long byteAt) {
        ShortVector bits = ShortVector.fromMemorySegment(SHORT_SPECIES, segment, byteAt, LE);
        return ((IntVector) bits.convertShape(VectorOperators.S2I, INT_SPECIES, 0))
                .lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** Round to nearest even: add 0x7FFF plus the lowest kept bit, keep the top 16 bits; NaN stays NaN. */
    private void writeBf16(long at, float[] src, int off, boolean accumulate) {
        int x = 0;
        for (; x < vectorEnd; x += LANES) {
            long byteAt = at + 2L * x;
            FloatVector value = FloatVector.fromArray(SPECIES, src, off + x);
            if (accumulate) {
                value = value.add(bf16Vector(byteAt));
            }
            IntVector bits = value.reinterpretAsInts();
            IntVector rounded = bits.add(bits.lanewise(VectorOperators.LSHR, 16).and(1)).add(0x7FFF)
                    .lanewise(VectorOperators.LSHR, 16);
            IntVector quietNaN = bits.lanewise(VectorOperators.LSHR, 16).or(0x0040);
            rounded = rounded.blend(quietNaN, value.test(VectorOperators.IS_NAN).cast(INT_SPECIES));
            rounded.convertShape(VectorOperators.I2S, SHORT_SPECIES, 0).reinterpretAsShorts()
                    .intoMemorySegment(segment, byteAt, LE);
        }
        for (; x < headDim; x++) {
            long byteAt = at + 2L * x;
            float value = src[off + x];
            if (accumulate) {
                value += DType.bf16ToFloat(segment.get(SHORT_LE, byteAt));
            }
            segment.set(SHORT_LE, byteAt, DType.floatToBf16(value));
        }
    }

    private void readF16(long at, float[] dst, int off, float scale, short[] shorts) {
        int x = 0;
        for (; x < vectorEnd; x += LANES) {
            f16Vector(at + 2L * x).mul(scale).intoArray(dst, off + x);
        }
        for (; x < headDim; x++) {
            dst[off + x] = Float.float16ToFloat(segment.get(SHORT_LE, at + 2L * x)) * scale;
        }
    }

    /**
     * IEEE half to float without a lookup: the 15 magnitude bits shifted into float position (exponent
     * bias 15 instead of 127) are the right float times 2^-112, subnormals included, so one multiply by
     * 2^112 rescales them; an all-ones exponent (inf, NaN) is set to the float's all-ones instead.
     */
    private FloatVector f16Vector(long byteAt) {
        IntVector half = ((IntVector) ShortVector.fromMemorySegment(SHORT_SPECIES, segment, byteAt, LE)
                .convertShape(VectorOperators.S2I, INT_SPECIES, 0));
        IntVector magnitude = half.and(0x7FFF).lanewise(VectorOperators.LSHL, 13);
        IntVector scaled = magnitude.reinterpretAsFloats().mul(0x1p112f).reinterpretAsInts();
        IntVector special = magnitude.or(0x7F800000);
        IntVector bits = scaled.blend(special, half.and(0x7C00).eq(0x7C00));
        return bits.or(half.and(0x8000).lanewise(VectorOperators.LSHL, 16)).reinterpretAsFloats();
    }

    private void writeF16(long at, float[] src, int off, boolean accumulate, short[] shorts) {
        if (accumulate) {
            MemorySegment.copy(segment, SHORT_LE, at, shorts, 0, headDim);
            for (int x = 0; x < headDim; x++) {
                shorts[x] = Float.floatToFloat16(Float.float16ToFloat(shorts[x]) + src[off + x]);
            }
        } else {
            for (int x = 0; x < headDim; x++) {
                shorts[x] = Float.floatToFloat16(src[off + x]);
            }
        }
        MemorySegment.copy(shorts, 0, segment, SHORT_LE, at, headDim);
    }
}
