package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Row reads and writes against the scalar conversions of {@link DType} (the tensor package's own
 * definition of each format), bit for bit, on vector-width rows and on tails.
 */
class TensorRowsTest {

    private static final long SEED = Long.getLong("usp4j.test.seed", System.nanoTime());
    private static final ValueLayout.OfShort SHORT_LE =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    @Test
    void everyHalfAndBfloat16BitPatternReadsExactly() {
        for (DType type : new DType[] {DType.F16, DType.BF16}) {
            try (Arena arena = Arena.ofConfined()) {
                int d = 19; // two vectors and a tail on 8-lane machines
                int rows = 65536 / d + 1;
                Tensor t = Tensor.allocate(arena, type, 1, rows, 1, d);
                MemorySegment seg = t.segment();
                for (int i = 0; i < rows * d; i++) {
                    seg.set(SHORT_LE, 2L * i, (short) i);
                }
                TensorRows reader = new TensorRows(t);
                float[] row = new float[d];
                short[] scratch = new short[d];
                for (int s = 0; s < rows; s++) {
                    reader.read(0, s, 0, row, 0, 1f, scratch);
                    for (int x = 0; x < d; x++) {
                        float expected = type.read(seg, 2L * (s * d + x));
                        assertSameFloat(expected, row[x], type + " bits 0x" + Integer.toHexString((s * d + x) & 0xFFFF));
                    }
                }
            }
        }
    }

    @Test
    void writesRoundLikeTheDtypeAndAccumulateInFloat32() {
        SplittableRandom random = new SplittableRandom(SEED);
        float[] specials = {0f, -0f, 1f, -1f, Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY,
            Float.MIN_VALUE, Float.MAX_VALUE, 65504f, 65520f, 6.1e-5f, 1.00390625f, 1.01171875f, 3.0e38f};
        for (DType type : DType.values()) {
            for (int d : new int[] {1, 8, 13, 64}) {
                try (Arena arena = Arena.ofConfined()) {
                    // A strided view: [b=2, s=3, h=2, d] inside a larger buffer, heads interleaved with noise.
                    Tensor big = Tensor.allocate(arena, type, 2, 3, 5, d);
                    HostTensors.fillNormal(big, random.nextLong());
                    Tensor view = big.slice(2, 1, 2);
                    float[] before = HostTensors.toFloatArray(big);
                    TensorRows rows = new TensorRows(view);
                    float[] values = new float[d + 3];
                    short[] scratch = new short[d];
                    for (int b = 0; b < 2; b++) {
                        for (int s = 0; s < 3; s++) {
                            for (int h = 0; h < 2; h++) {
                                for (int x = 0; x < values.length; x++) {
                                    values[x] = random.nextInt(4) == 0 ? specials[random.nextInt(specials.length)]
                                            : (float) (random.nextGaussian() * Math.pow(10, random.nextInt(9) - 4));
                                }
                                boolean accumulate = random.nextBoolean();
                                float[] old = new float[d];
                                for (int x = 0; x < d; x++) {
                                    old[x] = view.get(b, s, h, x);
                                }
                                rows.write(b, s, h, values, 3, accumulate, scratch);
                                for (int x = 0; x < d; x++) {
                                    float expected = type.round(accumulate ? old[x] + values[3 + x] : values[3 + x]);
                                    assertSameFloat(expected, view.get(b, s, h, x), type + " d=" + d + " write of "
                                            + values[3 + x] + (accumulate ? " onto " + old[x] : "") + ", seed " + SEED);
                                }
                                float[] back = new float[d];
                                rows.read(b, s, h, back, 0, 2f, scratch);
                                for (int x = 0; x < d; x++) {
                                    assertSameFloat(2f * view.get(b, s, h, x), back[x], "scaled read-back");
                                }
                            }
                        }
                    }
                    // The rows of the heads outside the view still hold their noise.
                    float[] after = HostTensors.toFloatArray(big);
                    for (int i = 0; i < after.length; i++) {
                        int head = (i / d) % 5;
                        if (head != 1 && head != 2) {
                            assertSameFloat(before[i], after[i], "element " + i + " outside the view");
                        }
                    }
                }
            }
        }
    }

    private static void assertSameFloat(float expected, float actual, String what) {
        if (Float.isNaN(expected)) {
            assertEquals(true, Float.isNaN(actual), what + ": expected NaN, got " + actual);
        } else {
            assertEquals(Float.floatToRawIntBits(expected), Float.floatToRawIntBits(actual),
                    what + ": expected " + expected + ", got " + actual);
        }
    }
}
