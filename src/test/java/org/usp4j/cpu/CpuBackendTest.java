package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

class CpuBackendTest {

    private final Arena arena = Arena.ofShared();
    private final CpuBackend backend = new CpuBackend(new ReferenceAttention());

    @AfterEach
    void tearDown() {
        backend.close();
        arena.close();
    }

    private Tensor random(DType dtype, long seed, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        HostTensors.fillNormal(t, seed);
        return t;
    }

    @Test
    void stridedConvertingCopyMatchesElementwiseCopy() {
        Tensor src = random(DType.F32, 1, 2, 5, 6, 3);
        for (DType dt : DType.values()) {
            // A transposed source (heads <-> sequence) into a slice of a larger destination.
            Tensor view = src.transpose(1, 2);
            Tensor big = Tensor.allocate(arena, dt, 2, 8, 5, 3);
            Tensor dst = big.slice(1, 1, 6);
            backend.copy(view, dst);
            Tensor expected = Tensor.allocate(arena, dt, 2, 6, 5, 3);
            HostTensors.copy(view, expected);
            assertArrayEquals(HostTensors.toFloatArray(expected), HostTensors.toFloatArray(dst), dt.toString());
            // Rows outside the slice stay untouched.
            assertEquals(0f, big.get(0, 0, 0, 0));
            assertEquals(0f, big.get(1, 7, 4, 2));
        }
    }

    @Test
    void sameTypeRowCopyAndContiguousCopy() {
        Tensor src = random(DType.BF16, 2, 3, 4, 8, 16);
        Tensor dst = Tensor.allocate(arena, DType.BF16, 3, 4, 16, 16).slice(2, 8, 8);
        backend.copy(src, dst);
        assertArrayEquals(HostTensors.toFloatArray(src), HostTensors.toFloatArray(dst));
        Tensor whole = Tensor.allocate(arena, DType.BF16, 3, 4, 8, 16);
        backend.copy(src, whole);
        assertArrayEquals(HostTensors.toFloatArray(src), HostTensors.toFloatArray(whole));
    }

    @Test
    void stride0SourceBroadcastsWhenCopied() {
        Tensor src = random(DType.F32, 3, 2, 4);
        // View [2, 3, 4] with a zero stride on the middle dimension: three replicas of each row.
        Tensor replicated = src.withGeometry(new long[] {2, 3, 4}, new long[] {4, 0, 1}, 0);
        Tensor dst = Tensor.allocate(arena, DType.F32, 2, 3, 4);
        backend.copy(replicated, dst);
        for (int i = 0; i < 2; i++) {
            for (int r = 0; r < 3; r++) {
                for (int x = 0; x < 4; x++) {
                    assertEquals(src.get(i, x), dst.get(i, r, x));
                }
            }
        }
    }

    @Test
    void fillTouchesOnlyTheView() {
        Tensor t = Tensor.allocate(arena, DType.F16, 4, 6);
        backend.fill(t.slice(1, 2, 3), 1.5f);
        for (int i = 0; i < 4; i++) {
            for (int j = 0; j < 6; j++) {
                assertEquals(j >= 2 && j < 5 ? 1.5f : 0f, t.get(i, j));
            }
        }
        backend.fill(t, Float.NEGATIVE_INFINITY);
        backend.fill(t.slice(0, 1, 1), 0f);
        assertEquals(Float.NEGATIVE_INFINITY, t.get(0, 0));
        assertEquals(0f, t.get(1, 3));
    }

    @Test
    void addConvertsAndAccumulatesInFloat32() {
        Tensor dst = random(DType.F32, 4, 3, 5, 7);
        Tensor src = random(DType.BF16, 5, 3, 7, 5).transpose(1, 2);
        float[] before = HostTensors.toFloatArray(dst);
        float[] s = HostTensors.toFloatArray(src);
        backend.add(dst, src);
        float[] after = HostTensors.toFloatArray(dst);
        for (int i = 0; i < before.length; i++) {
            assertEquals(before[i] + s[i], after[i], 0f);
        }
        Tensor bf = random(DType.BF16, 6, 4, 4);
        float[] b0 = HostTensors.toFloatArray(bf);
        backend.add(bf, bf);
        float[] b1 = HostTensors.toFloatArray(bf);
        for (int i = 0; i < b0.length; i++) {
            assertEquals(DType.BF16.round(2 * b0[i]), b1[i], 0f);
        }
    }

    @Test
    void mergeOfTwoKeyHalvesEqualsAttentionOverAllKeys() {
        ReferenceAttention ref = new ReferenceAttention();
        int b = 2, sq = 6, skv = 10, h = 4, hkv = 2, d = 5;
        float scale = 0.4f;
        Tensor q = random(DType.F32, 7, b, sq, h, d);
        Tensor k = random(DType.F32, 8, b, skv, hkv, d);
        Tensor v = random(DType.F32, 9, b, skv, hkv, d);
        Tensor fullOut = Tensor.allocate(arena, DType.F32, b, sq, h, d);
        Tensor fullLse = Tensor.allocate(arena, DType.F32, b, h, sq);
        ref.forward(q, k, v, Mask.CAUSAL, scale, fullOut, fullLse);

        // Accumulators start as "no key seen": lse = -inf and garbage (NaN) in out, which must be ignored.
        Tensor out = Tensor.allocate(arena, DType.F32, b, sq, h, d);
        Tensor lse = Tensor.allocate(arena, DType.F32, b, h, sq);
        backend.fill(out, Float.NaN);
        backend.fill(lse, Float.NEGATIVE_INFINITY);
        // Keys [0, 4) with the causal mask, then keys [4, 10) where row i sees key 4 + j if 4 + j <= i:
        // rows 0..3 see none of them (lse -inf in that block), which must leave them unchanged.
        Tensor blockLse = Tensor.allocate(arena, DType.F32, b, h, sq);
        Tensor firstOut = Tensor.allocate(arena, DType.F32, b, sq, h, d);
        ref.forward(q, k.slice(1, 0, 4), v.slice(1, 0, 4), Mask.CAUSAL, scale, firstOut, blockLse);
        backend.mergeAttention(out, lse, firstOut, blockLse);
        Tensor second = Tensor.allocate(arena, DType.F32, b, sq, h, d);
        Tensor secondLse = Tensor.allocate(arena, DType.F32, b, h, sq);
        // Rows 4..5 against keys 4..9 under the shifted causal mask: row 4 sees key 4, row 5 keys 4..5.
        ref.forward(q.slice(1, 4, 2), k.slice(1, 4, 6), v.slice(1, 4, 6), Mask.CAUSAL, scale,
                second.slice(1, 4, 2), secondLse.slice(2, 4, 2));
        backend.fill(secondLse.slice(2, 0, 4), Float.NEGATIVE_INFINITY);
        backend.mergeAttention(out, lse, second, secondLse);

        assertTrue(HostTensors.relativeError(out, fullOut) < 1e-6, "out error " + HostTensors.relativeError(out, fullOut));
        assertTrue(HostTensors.relativeError(lse, fullLse) < 1e-6, "lse error " + HostTensors.relativeError(lse, fullLse));
        for (float x : HostTensors.toFloatArray(out)) {
            assertFalse(Float.isNaN(x));
        }
    }

    @Test
    void mergeRowsWithNoKeysStayNegativeInfinityWithoutNaN() {
        Tensor out = Tensor.allocate(arena, DType.F32, 1, 3, 2, 4);
        Tensor lse = Tensor.allocate(arena, DType.F32, 1, 2, 3);
        Tensor blockOut = Tensor.allocate(arena, DType.F32, 1, 3, 2, 4);
        Tensor blockLse = Tensor.allocate(arena, DType.F32, 1, 2, 3);
        backend.fill(lse, Float.NEGATIVE_INFINITY);
        backend.fill(blockLse, Float.NEGATIVE_INFINITY);
        backend.fill(blockOut, Float.NaN);
        backend.mergeAttention(out, lse, blockOut, blockLse);
        for (float x : HostTensors.toFloatArray(lse)) {
            assertEquals(Float.NEGATIVE_INFINITY, x);
        }
        for (float x : HostTensors.toFloatArray(out)) {
            assertEquals(0f, x);
        }
    }

    @Test
    void badArgumentsAreRefusedWithTheValues() {
        Tensor a = Tensor.allocate(arena, DType.F32, 2, 3);
        Tensor b = Tensor.allocate(arena, DType.F32, 3, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> backend.copy(a, b));
        assertTrue(e.getMessage().contains("[2, 3]") && e.getMessage().contains("[3, 2]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> backend.add(a, b));
        Tensor out = Tensor.allocate(arena, DType.F32, 1, 3, 2, 4);
        Tensor lse16 = Tensor.allocate(arena, DType.BF16, 1, 2, 3);
        e = assertThrows(IllegalArgumentException.class, () -> backend.mergeAttention(out, lse16, out, lse16));
        assertTrue(e.getMessage().contains("BF16"), e.getMessage());
        Tensor lseWrong = Tensor.allocate(arena, DType.F32, 1, 3, 2);
        e = assertThrows(IllegalArgumentException.class, () -> backend.mergeAttention(out, lseWrong, out, lseWrong));
        assertTrue(e.getMessage().contains("[1, 3, 2]"), e.getMessage());
    }

    @Test
    void allocatorCountsLiveBytesAndFreesOnce() {
        assertEquals(0, backend.liveBytes());
        TensorAllocator alloc = backend.newAllocator();
        Tensor t = alloc.allocate(DType.BF16, 4, 8);
        alloc.allocate(DType.F32, 10);
        assertEquals(4 * 8 * 2 + 40, backend.liveBytes());
        alloc.close();
        alloc.close();
        assertEquals(0, backend.liveBytes());
        assertThrows(IllegalStateException.class, () -> alloc.allocate(DType.F32, 1));
        assertThrows(IllegalStateException.class, () -> t.get(0, 0));
    }

    @Test
    void closedBackendRefusesWork() {
        Tensor a = Tensor.allocate(arena, DType.F32, 2);
        backend.close();
        backend.close();
        assertThrows(IllegalStateException.class, backend::newAllocator);
        assertThrows(IllegalStateException.class, () -> backend.fill(a, 1f));
    }
}
