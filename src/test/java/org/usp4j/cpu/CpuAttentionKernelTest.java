package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.stream.Stream;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The CPU kernel against the float64 {@link ReferenceAttention} on random inputs. Most cases run with
 * tiny tiles (forward 24 query rows x 8 keys, backward 8 x 24) so that small shapes still cross many
 * tiles, tile tails, causal diagonals and several threads; a few run the default tiles.
 *
 * <p>Tolerances are relative Frobenius errors against the reference run on the very same (already
 * rounded) inputs: float32 results 1e-5 (seen: up to 1.6e-6; the softmax exp2 is accurate to 2.3e-7
 * and sums run in float32), lse 2e-6 of max(1, |lse|), results stored in BF16 4e-3 and in F16 1e-3 (one rounding of each
 * element, at most 2^-9 and 2^-12 relative; seen 1.8e-3 and 2.1e-4). Seeds are fresh per run (printed
 * on failure) unless -Dusp4j.test.seed is set.
 */
class CpuAttentionKernelTest {

    private static final long BASE_SEED = Long.getLong("usp4j.test.seed", System.nanoTime());
    private static final Tiling SMALL_TILES = new Tiling(TileGemm.PANEL, 8, 8, TileGemm.PANEL);

    private static ForkJoinPool threePool;
    private static CpuAttentionKernel smallTiles;
    private static CpuAttentionKernel defaultTiles;

    @BeforeAll
    static void setUp() {
        // Three threads: more workers than this machine's cores, so item hand-off and dq locking are exercised.
        threePool = new ForkJoinPool(3);
        smallTiles = new CpuAttentionKernel(threePool, SMALL_TILES);
        defaultTiles = new CpuAttentionKernel();
    }

    @AfterAll
    static void tearDown() {
        threePool.shutdownNow();
    }

    /** One attention problem: shape, mask, dtypes and whether inputs are strided views. */
    record Case(int batch, int seqQ, int seqKv, int heads, int kvHeads, int headDim, Mask mask,
                DType inputType, DType outputType, boolean strided, float scale) {

        Case(int batch, int seqQ, int seqKv, int heads, int kvHeads, int headDim, Mask mask, DType type) {
            this(batch, seqQ, seqKv, heads, kvHeads, headDim, mask, type, DType.F32, false,
                    (float) (1 / Math.sqrt(headDim)));
        }

        Case withOutput(DType t) {
            return new Case(batch, seqQ, seqKv, heads, kvHeads, headDim, mask, inputType, t, strided, scale);
        }

        Case asStrided() {
            return new Case(batch, seqQ, seqKv, heads, kvHeads, headDim, mask, inputType, outputType, true, scale);
        }

        /** The same case with its inputs stored as {@code t} (for gradient tensors laid out like the inputs). */
        Case storedAs(DType t) {
            return new Case(batch, seqQ, seqKv, heads, kvHeads, headDim, mask, t, outputType, strided, scale);
        }

        Case withScale(float s) {
            return new Case(batch, seqQ, seqKv, heads, kvHeads, headDim, mask, inputType, outputType, strided, s);
        }

        double tolerance() {
            return switch (outputType) {
                case F32 -> 1e-5;
                case BF16 -> 4e-3;
                case F16 -> 1e-3;
            };
        }
    }

    /** Both classic masks and diagonal-shifted causal masks (striped ring steps, later query blocks). */
    private static final Mask[] MASKS = {Mask.NONE, Mask.CAUSAL, Mask.causal(-1), Mask.causal(5), Mask.causal(-9)};

    static Stream<Case> cases() {
        List<Case> cases = new ArrayList<>();
        for (Mask mask : MASKS) {
            cases.add(new Case(1, 1, 1, 1, 1, 8, mask, DType.F32));           // s = 1
            cases.add(new Case(2, 37, 37, 4, 4, 33, mask, DType.F32));        // odd head_dim, s not a tile multiple
            cases.add(new Case(1, 50, 50, 6, 2, 40, mask, DType.F32));        // GQA
            cases.add(new Case(2, 29, 29, 4, 1, 72, mask, DType.F32));        // MQA
            cases.add(new Case(1, 64, 64, 2, 2, 64, mask, DType.F32));
            cases.add(new Case(1, 45, 45, 2, 1, 80, mask, DType.BF16));
            cases.add(new Case(1, 31, 31, 2, 2, 96, mask, DType.F32));
            cases.add(new Case(1, 40, 40, 2, 1, 128, mask, DType.BF16));
            cases.add(new Case(1, 19, 19, 3, 3, 5, mask, DType.F16));         // head_dim below one vector
            cases.add(new Case(1, 33, 33, 4, 2, 48, mask, DType.BF16).asStrided());
            cases.add(new Case(1, 26, 26, 2, 2, 64, mask, DType.F32).asStrided().withScale(0.7f));
            cases.add(new Case(1, 30, 30, 2, 2, 16, mask, DType.F32).withOutput(DType.BF16));
            cases.add(new Case(1, 30, 30, 2, 1, 24, mask, DType.BF16).withOutput(DType.BF16));
            cases.add(new Case(1, 21, 21, 2, 2, 24, mask, DType.F16).withOutput(DType.F16));
        }
        cases.add(new Case(1, 29, 53, 4, 2, 40, Mask.NONE, DType.F32));       // s_q != s_kv
        cases.add(new Case(2, 61, 13, 2, 1, 32, Mask.NONE, DType.BF16));
        cases.add(new Case(1, 13, 41, 2, 2, 16, Mask.CAUSAL, DType.F32));    // top-left causal, s_q < s_kv
        cases.add(new Case(1, 41, 13, 2, 2, 16, Mask.CAUSAL, DType.F32));    // rows past s_kv see every key
        cases.add(new Case(1, 20, 20, 2, 2, 8, Mask.NONE, DType.F32).withScale(2.5f));
        cases.add(new Case(1, 9, 9, 2, 1, 0, Mask.CAUSAL, DType.F32).withScale(1f)); // head_dim 0: lse = ln(keys seen)
        return cases.stream();
    }

    @ParameterizedTest
    @MethodSource("cases")
    void forwardMatchesReference(Case c) {
        checkForward(smallTiles, c);
    }

    @ParameterizedTest
    @MethodSource("cases")
    void backwardMatchesReference(Case c) {
        checkBackward(smallTiles, c, false);
    }

    @Test
    void backwardAccumulatesIntoExistingGradients() {
        checkBackward(smallTiles, new Case(1, 37, 37, 4, 2, 40, Mask.CAUSAL, DType.F32), true);
        checkBackward(smallTiles, new Case(2, 29, 45, 2, 1, 24, Mask.NONE, DType.BF16), true);
        checkBackward(smallTiles, new Case(1, 25, 25, 2, 2, 16, Mask.NONE, DType.F32).asStrided(), true);
    }

    @Test
    void defaultTilesMatchReference() {
        for (Mask mask : MASKS) {
            Case c = new Case(1, 300, 300, 2, 1, 64, mask, DType.BF16);
            checkForward(defaultTiles, c);
            checkBackward(defaultTiles, c, false);
        }
        Case gqa = new Case(2, 200, 260, 4, 2, 72, Mask.NONE, DType.F32);
        checkForward(defaultTiles, gqa);
        checkBackward(defaultTiles, gqa, false);
    }

    /**
     * The default tiles' edges on one head pair: more query rows than a forward block (768) and more keys
     * than a backward chunk (576), neither a multiple of a panel, an odd head_dim that fills no vector,
     * GQA, and top-left causal offsets both ways (s_q < s_kv, s_q > s_kv). One thread, and 4 heads on 2 KV
     * heads, so that the passes keep the full tile sizes instead of shrinking them for parallelism.
     */
    @Test
    void defaultTileEdgesMatchReference() {
        List<Case> edges = List.of(
                new Case(1, 803, 803, 4, 2, 37, Mask.NONE, DType.BF16),
                new Case(1, 803, 803, 4, 2, 37, Mask.CAUSAL, DType.F32),
                new Case(1, 350, 611, 4, 2, 20, Mask.CAUSAL, DType.F32),
                new Case(1, 790, 300, 4, 2, 9, Mask.CAUSAL, DType.BF16));
        ForkJoinPool one = new ForkJoinPool(1);
        try {
            CpuAttentionKernel kernel = new CpuAttentionKernel(one, Tiling.DEFAULT);
            for (Case c : edges) {
                checkForward(kernel, c);
                checkBackward(kernel, c, false);
            }
        } finally {
            one.shutdownNow();
        }
    }

    @Test
    void singleThreadedPoolGivesTheSameResults() {
        ForkJoinPool one = new ForkJoinPool(1);
        try {
            Case c = new Case(1, 50, 50, 2, 1, 24, Mask.CAUSAL, DType.F32);
            CpuAttentionKernel kernel = new CpuAttentionKernel(one, SMALL_TILES);
            checkForward(kernel, c);
            checkBackward(kernel, c, false);
        } finally {
            one.shutdownNow();
        }
    }

    @Test
    void noKeysGiveZeroOutputAndMinusInfinityLse() {
        try (Arena arena = Arena.ofShared()) {
            Tensor q = Tensor.allocate(arena, DType.F32, 1, 5, 2, 8);
            Tensor kv = Tensor.allocate(arena, DType.F32, 1, 0, 2, 8);
            HostTensors.fillNormal(q, BASE_SEED);
            Tensor out = Tensor.allocate(arena, DType.F32, 1, 5, 2, 8);
            fillConstant(out, 7f);
            Tensor lse = Tensor.allocate(arena, DType.F32, 1, 2, 5);
            smallTiles.forward(q, kv, kv, Mask.NONE, 0.5f, out, lse);
            for (float x : HostTensors.toFloatArray(out)) {
                assertEquals(0f, x);
            }
            for (float x : HostTensors.toFloatArray(lse)) {
                assertEquals(Float.NEGATIVE_INFINITY, x);
            }
            // Their gradients are zero, and dk/dv are empty.
            Tensor dq = Tensor.allocate(arena, DType.F32, 1, 5, 2, 8);
            fillConstant(dq, 3f);
            smallTiles.backward(q, kv, kv, out, q, lse, Mask.NONE, 0.5f, dq, kv, kv, false);
            for (float x : HostTensors.toFloatArray(dq)) {
                assertEquals(0f, x);
            }
        }
    }

    @Test
    void causalOutputIsFiniteEverywhereAtLongRange() {
        // Large logits (scale 4) stress the running max: every row must stay finite and rows must sum
        // their probabilities to one, checked through a value tensor of ones.
        try (Arena arena = Arena.ofShared()) {
            Tensor q = Tensor.allocate(arena, DType.F32, 1, 100, 2, 16);
            Tensor k = Tensor.allocate(arena, DType.F32, 1, 100, 2, 16);
            Tensor v = Tensor.allocate(arena, DType.F32, 1, 100, 2, 16);
            HostTensors.fillNormal(q, BASE_SEED + 1);
            HostTensors.fillNormal(k, BASE_SEED + 2);
            fillConstant(v, 1f);
            Tensor out = Tensor.allocate(arena, DType.F32, 1, 100, 2, 16);
            Tensor lse = Tensor.allocate(arena, DType.F32, 1, 2, 100);
            smallTiles.forward(q, k, v, Mask.CAUSAL, 4f, out, lse);
            for (float x : HostTensors.toFloatArray(out)) {
                assertEquals(1f, x, 1e-5f, "seed " + BASE_SEED);
            }
            for (float x : HostTensors.toFloatArray(lse)) {
                assertTrue(Float.isFinite(x), "lse " + x + ", seed " + BASE_SEED);
            }
        }
    }

    @Test
    void concurrentCallersShareThePoolCorrectly() throws Exception {
        // Ranks as threads: several callers at once on one kernel, from plain threads and from tasks of
        // the kernel's own pool (which then help run the items instead of blocking a worker).
        List<Case> work = List.of(
                new Case(1, 40, 40, 4, 2, 24, Mask.CAUSAL, DType.F32),
                new Case(2, 33, 33, 2, 1, 40, Mask.NONE, DType.BF16),
                new Case(1, 50, 50, 2, 2, 16, Mask.CAUSAL, DType.BF16),
                new Case(1, 29, 47, 2, 2, 32, Mask.NONE, DType.F32));
        List<Thread> threads = new ArrayList<>();
        List<Throwable> failures = java.util.Collections.synchronizedList(new ArrayList<>());
        for (Case c : work) {
            threads.add(new Thread(() -> {
                try {
                    checkForward(smallTiles, c);
                    checkBackward(smallTiles, c, true);
                } catch (Throwable e) {
                    failures.add(e);
                }
            }));
        }
        threads.forEach(Thread::start);
        List<java.util.concurrent.Future<?>> inPool = new ArrayList<>();
        for (Case c : work) {
            inPool.add(threePool.submit(() -> {
                checkForward(smallTiles, c);
                checkBackward(smallTiles, c, false);
            }));
        }
        for (Thread t : threads) {
            t.join();
        }
        for (var f : inPool) {
            f.get(60, java.util.concurrent.TimeUnit.SECONDS);
        }
        if (!failures.isEmpty()) {
            throw new AssertionError(failures.size() + " caller(s) failed", failures.get(0));
        }
    }

    @Test
    void aNanInOneQueryRowPoisonsThatRowOnly() {
        try (Arena arena = Arena.ofShared()) {
            Tensor q = Tensor.allocate(arena, DType.F32, 1, 30, 2, 16);
            Tensor k = Tensor.allocate(arena, DType.F32, 1, 30, 2, 16);
            Tensor v = Tensor.allocate(arena, DType.F32, 1, 30, 2, 16);
            HostTensors.fillNormal(q, BASE_SEED + 3);
            HostTensors.fillNormal(k, BASE_SEED + 4);
            HostTensors.fillNormal(v, BASE_SEED + 5);
            q.set(Float.NaN, 0, 7, 1, 3);
            Tensor out = Tensor.allocate(arena, DType.F32, 1, 30, 2, 16);
            Tensor lse = Tensor.allocate(arena, DType.F32, 1, 2, 30);
            smallTiles.forward(q, k, v, Mask.NONE, 0.25f, out, lse);
            for (int s = 0; s < 30; s++) {
                for (int h = 0; h < 2; h++) {
                    boolean poisoned = s == 7 && h == 1;
                    assertEquals(poisoned, Float.isNaN(lse.get(0, h, s)), "lse at s=" + s + " h=" + h);
                    for (int x = 0; x < 16; x++) {
                        assertEquals(poisoned, Float.isNaN(out.get(0, s, h, x)), "out at s=" + s + " h=" + h);
                    }
                }
            }
        }
    }

    // ---- helpers ----------------------------------------------------------------------------

    /** The tensors of one case, filled with fresh random values. */
    private static final class Inputs {
        final Tensor q;
        final Tensor k;
        final Tensor v;
        final long seed;

        Inputs(Arena arena, Case c, long seed) {
            this.seed = seed;
            q = qShaped(arena, c, c.inputType, seed);
            Tensor[] kv = kvPair(arena, c, seed);
            k = kv[0];
            v = kv[1];
            HostTensors.fillNormal(q, seed + 1);
            HostTensors.fillNormal(k, seed + 2);
            HostTensors.fillNormal(v, seed + 3);
        }
    }

    /**
     * A [b, s_q, h, d] tensor: contiguous, or for strided cases a view of a [b, h, s_q + 3, d] buffer,
     * transposed to bshd and sliced along the sequence (strides that no contiguous tensor has).
     */
    static Tensor qShaped(Arena arena, Case c, DType type, long seed) {
        if (!c.strided) {
            return Tensor.allocate(arena, type, c.batch, c.seqQ, c.heads, c.headDim);
        }
        Tensor bhsd = Tensor.allocate(arena, type, c.batch, c.heads, c.seqQ + 3, c.headDim);
        HostTensors.fillNormal(bhsd, seed + 99); // the parts outside the view hold noise
        return bhsd.transpose(1, 2).slice(1, 2, c.seqQ);
    }

    /** K and V: separate contiguous tensors, or for strided cases heads of one [b, s_kv, 2 h_kv, d] buffer. */
    static Tensor[] kvPair(Arena arena, Case c, long seed) {
        if (!c.strided) {
            return new Tensor[] {
                Tensor.allocate(arena, c.inputType, c.batch, c.seqKv, c.kvHeads, c.headDim),
                Tensor.allocate(arena, c.inputType, c.batch, c.seqKv, c.kvHeads, c.headDim)};
        }
        Tensor packed = Tensor.allocate(arena, c.inputType, c.batch, c.seqKv, 2 * c.kvHeads, c.headDim);
        HostTensors.fillNormal(packed, seed + 98);
        return new Tensor[] {packed.slice(2, 0, c.kvHeads), packed.slice(2, c.kvHeads, c.kvHeads)};
    }

    private static void checkForward(CpuAttentionKernel kernel, Case c) {
        long seed = BASE_SEED + c.hashCode();
        try (Arena arena = Arena.ofShared()) {
            Inputs in = new Inputs(arena, c, seed);
            Tensor out = qShaped(arena, c, c.outputType, seed + 4);
            Tensor lse = Tensor.allocate(arena, DType.F32, c.batch, c.heads, c.seqQ);
            kernel.forward(in.q, in.k, in.v, c.mask, c.scale, out, lse);

            Tensor refOut = Tensor.allocate(arena, DType.F32, c.batch, c.seqQ, c.heads, c.headDim);
            Tensor refLse = Tensor.allocate(arena, DType.F32, c.batch, c.heads, c.seqQ);
            new ReferenceAttention().forward(in.q, in.k, in.v, c.mask, c.scale, refOut, refLse);

            String what = c + " seed " + seed;
            assertAllFinite(out, "out of " + what);
            assertClose(out, refOut, c.tolerance(), "out of " + what);
            assertLseClose(lse, refLse, "lse of " + what);
        }
    }

    /**
     * The backward from the reference's own out and lse (stored as the output dtype), compared with the
     * reference backward on the same tensors; with {@code accumulate} the gradients start from noise.
     */
    private static void checkBackward(CpuAttentionKernel kernel, Case c, boolean accumulate) {
        long seed = BASE_SEED + 31L * c.hashCode() + (accumulate ? 7 : 0);
        try (Arena arena = Arena.ofShared()) {
            Inputs in = new Inputs(arena, c, seed);
            Tensor out = qShaped(arena, c, c.outputType, seed + 4);
            Tensor lse = Tensor.allocate(arena, DType.F32, c.batch, c.heads, c.seqQ);
            new ReferenceAttention().forward(in.q, in.k, in.v, c.mask, c.scale, out, lse);
            Tensor dout = qShaped(arena, c, c.inputType, seed + 5);
            HostTensors.fillNormal(dout, seed + 6);

            Tensor dq = qShaped(arena, c, c.outputType, seed + 7);
            Tensor[] dkv = kvPair(arena, c.storedAs(c.outputType), seed + 8);
            Tensor[] grads = {dq, dkv[0], dkv[1]};
            Tensor[] expected = new Tensor[3];
            for (int i = 0; i < 3; i++) {
                if (accumulate) {
                    HostTensors.fillNormal(grads[i], seed + 10 + i);
                }
                expected[i] = Tensor.allocate(arena, DType.F32, grads[i].shape());
                HostTensors.copy(grads[i], expected[i]);
            }
            kernel.backward(in.q, in.k, in.v, out, dout, lse, c.mask, c.scale, grads[0], grads[1], grads[2],
                    accumulate);
            new ReferenceAttention().backward(in.q, in.k, in.v, out, dout, lse, c.mask, c.scale,
                    expected[0], expected[1], expected[2], accumulate);

            String[] names = {"dq", "dk", "dv"};
            for (int i = 0; i < 3; i++) {
                String what = names[i] + (accumulate ? " (accumulated)" : "") + " of " + c + " seed " + seed;
                assertAllFinite(grads[i], what);
                assertClose(grads[i], expected[i], c.tolerance(), what);
            }
        }
    }

    /**
     * Relative Frobenius error, except that a gradient which is zero in exact arithmetic (dq and dk with a
     * single visible key: dS = P (dP - D) = 0, in float32 a cancellation of O(1) terms) is measured
     * against the scale of the standard-normal inputs (RMS 1) instead of its own rounding noise.
     */
    private static void assertClose(Tensor actual, Tensor expected, double tolerance, String what) {
        double[] a = HostTensors.toDoubleArray(actual);
        double[] e = HostTensors.toDoubleArray(expected);
        double error = HostTensors.relativeError(a, e);
        if (Double.isInfinite(error) || error > tolerance) {
            double norm = 0;
            double diff = 0;
            for (int i = 0; i < e.length; i++) {
                if (Double.isFinite(e[i]) || a[i] != e[i]) {
                    norm += e[i] * e[i];
                    diff += (a[i] - e[i]) * (a[i] - e[i]);
                }
            }
            double floor = Math.sqrt(e.length);
            if (Math.sqrt(norm) < 1e-3 * floor) {
                error = Math.sqrt(diff) / floor;
            }
        }
        assertTrue(error <= tolerance, what + ": relative error " + error + " > " + tolerance);
    }

    /**
     * lse entries within 2e-6 of the reference relative to max(1, |lse|): lse is a dot product plus a
     * log, so near zero it carries the absolute rounding of its O(1) terms, not a relative one.
     * -inf (no key seen) must match exactly.
     */
    private static void assertLseClose(Tensor actual, Tensor expected, String what) {
        float[] a = HostTensors.toFloatArray(actual);
        float[] e = HostTensors.toFloatArray(expected);
        for (int i = 0; i < e.length; i++) {
            if (e[i] == Float.NEGATIVE_INFINITY) {
                assertEquals(Float.NEGATIVE_INFINITY, a[i], what + " at " + i);
                continue;
            }
            double error = Math.abs(a[i] - e[i]) / Math.max(1, Math.abs(e[i]));
            assertTrue(error <= 2e-6, what + " at " + i + ": " + a[i] + " vs " + e[i] + " (error " + error + ")");
        }
    }

    private static void assertAllFinite(Tensor t, String what) {
        for (float x : HostTensors.toFloatArray(t)) {
            assertTrue(Float.isFinite(x), what + " has a non-finite element " + x);
        }
    }

    private static void fillConstant(Tensor t, float value) {
        var seg = t.segment();
        HostTensors.forEachOffset(t, (i, off) -> t.dtype().write(seg, off, value));
    }
}
