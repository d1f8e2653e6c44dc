package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.PackedReference;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.kernel.SequenceSegments;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Single-rank packed attention: the CPU kernel (and the float64 reference) under a mask with one segment
 * per sequence equal the per-sequence float64 oracle, which attends each sequence on its own without
 * segments. Tolerances as in {@code CpuAttentionKernelTest}: F32 1e-5 relative Frobenius error, lse 2e-6.
 */
class CpuPackedAttentionTest {

    static Stream<Arguments> cases() {
        return Stream.of(
                Arguments.of(new long[] {7, 1, 30, 1, 25}, true, 4, 4, 16, new CpuAttentionKernel()),
                Arguments.of(new long[] {7, 1, 30, 1, 25}, false, 4, 2, 16, new CpuAttentionKernel()),
                Arguments.of(new long[] {200, 3, 60}, true, 2, 1, 8, new CpuAttentionKernel()),
                Arguments.of(new long[] {1, 1, 1, 1, 1, 1, 1, 1, 9, 2, 2, 2, 2, 3}, true, 4, 2, 24,
                        new CpuAttentionKernel()),
                Arguments.of(new long[] {5, 11, 1}, true, 4, 2, 8, new ReferenceAttention()));
    }

    @ParameterizedTest
    @MethodSource("cases")
    void segmentedMaskEqualsEachSequenceAttendedAlone(long[] lengths, boolean causal, int h, int hkv, int d,
                                                      AttentionKernel kernel) {
        SequenceBoundaries seqs = SequenceBoundaries.ofLengths(lengths);
        long s = seqs.totalLength();
        try (Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, 1, s, h, d), k = random(arena, 2, s, hkv, d), v = random(arena, 3, s, hkv, d);
            Tensor dout = random(arena, 4, s, h, d);
            float scale = (float) (1 / Math.sqrt(d));
            SequenceSegments.Builder b = SequenceSegments.builder();
            for (int i = 0; i < seqs.count(); i++) {
                b.add(seqs.start(i), seqs.end(i), seqs.start(i), seqs.end(i));
            }
            Mask mask = (causal ? Mask.CAUSAL : Mask.NONE).withSegments(b.build());
            Tensor out = Tensor.allocate(arena, DType.F32, q.shape());
            Tensor lse = Tensor.allocate(arena, DType.F32, 1, h, s);
            kernel.forward(q, k, v, mask, scale, out, lse);
            Tensor dq = Tensor.allocate(arena, DType.F32, q.shape());
            Tensor dk = Tensor.allocate(arena, DType.F32, k.shape());
            Tensor dv = Tensor.allocate(arena, DType.F32, v.shape());
            HostTensors.fillNormal(dk, 9); // overwritten: not accumulating
            kernel.backward(q, k, v, out, dout, lse, mask, scale, dq, dk, dv, false);

            PackedReference ref = PackedReference.of(arena, q, k, v, dout, seqs, causal, scale);
            assertClose("out", out, ref.out(), 1e-5);
            assertClose("lse", lse, ref.lse(), 2e-6);
            assertClose("dq", dq, ref.dq(), 1e-5);
            assertClose("dk", dk, ref.dk(), 1e-5);
            assertClose("dv", dv, ref.dv(), 1e-5);
        }
    }

    @Test
    void rowsAndKeysOutsideEverySegmentSeeNothingAndGetNoGradient() {
        try (Arena arena = Arena.ofShared()) {
            int h = 2, d = 8;
            Tensor q = random(arena, 1, 10, h, d), k = random(arena, 2, 12, h, d), v = random(arena, 3, 12, h, d);
            Tensor dout = random(arena, 4, 10, h, d);
            // rows 2..4 see keys 0..3, rows 6..9 see keys 7..11 (causal from their first key); rows 0, 1, 5
            // and keys 4..6 are outside.
            Mask mask = Mask.CAUSAL.withSegments(SequenceSegments.builder().add(2, 5, 0, 4).add(6, 10, 7, 12).build());
            Tensor out = Tensor.allocate(arena, DType.F32, q.shape());
            Tensor lse = Tensor.allocate(arena, DType.F32, 1, h, 10);
            HostTensors.fillNormal(out, 5);
            CpuAttentionKernel kernel = new CpuAttentionKernel();
            kernel.forward(q, k, v, mask, 0.3f, out, lse);
            Tensor refOut = Tensor.allocate(arena, DType.F32, q.shape());
            Tensor refLse = Tensor.allocate(arena, DType.F32, 1, h, 10);
            new ReferenceAttention().forward(q, k, v, mask, 0.3f, refOut, refLse);
            assertClose("out", out, refOut, 1e-5);
            float[] l = HostTensors.toFloatArray(lse);
            for (int head = 0; head < h; head++) {
                for (int row : new int[] {0, 1, 5}) {
                    assertEquals(Float.NEGATIVE_INFINITY, l[head * 10 + row], "lse of row " + row);
                }
            }
            Tensor dq = Tensor.allocate(arena, DType.F32, q.shape());
            Tensor dk = Tensor.allocate(arena, DType.F32, k.shape());
            Tensor dv = Tensor.allocate(arena, DType.F32, v.shape());
            HostTensors.fillNormal(dk, 6);
            HostTensors.fillNormal(dv, 7);
            Tensor before = Tensor.allocate(arena, DType.F32, k.shape());
            HostTensors.copy(dk, before);
            kernel.backward(q, k, v, refOut, dout, refLse, mask, 0.3f, dq, dk, dv, true); // accumulate
            float[] was = HostTensors.toFloatArray(before);
            float[] now = HostTensors.toFloatArray(dk);
            for (int key = 4; key < 7; key++) {
                for (int x = 0; x < h * d; x++) {
                    assertEquals(was[key * h * d + x], now[key * h * d + x], "dk of key " + key + " untouched");
                }
            }
            kernel.backward(q, k, v, refOut, dout, refLse, mask, 0.3f, dq, dk, dv, false);
            float[] fresh = HostTensors.toFloatArray(dk);
            for (int x = 4 * h * d; x < 7 * h * d; x++) {
                assertEquals(0f, fresh[x], "dk outside every segment is zero when overwriting");
            }
        }
    }

    @Test
    void segmentsPastTheBlockAreRefused() {
        try (Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, 1, 4, 1, 8), k = random(arena, 2, 4, 1, 8), v = random(arena, 3, 4, 1, 8);
            Mask mask = Mask.NONE.withSegments(SequenceSegments.builder().add(0, 5, 0, 4).build());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new CpuAttentionKernel()
                    .forward(q, k, v, mask, 1f, Tensor.allocate(arena, DType.F32, q.shape()),
                            Tensor.allocate(arena, DType.F32, 1, 1, 4)));
            assertTrue(e.getMessage().contains("past a block of 4 rows"), e.getMessage());
        }
    }

    private static Tensor random(Arena arena, long seed, long s, long h, long d) {
        Tensor t = Tensor.allocate(arena, DType.F32, 1, s, h, d);
        HostTensors.fillNormal(t, seed);
        return t;
    }

    private static void assertClose(String name, Tensor actual, Tensor expected, double tolerance) {
        double error = HostTensors.relativeError(actual, expected);
        assertTrue(error <= tolerance, name + ": relative Frobenius error " + error + " > " + tolerance);
    }
}
