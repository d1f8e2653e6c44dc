package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
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
import org.usp4j.kernel.LinearAttentionKernel;
import org.usp4j.kernel.LinearMask;
import org.usp4j.kernel.ReferenceLinearAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The CPU linear attention kernel against the float64 {@link ReferenceLinearAttention} on random inputs:
 * forward, both states and backward, with and without the states that link a block to the rest of the
 * sequence. Most cases use chunks of 8 rows on 3 threads so that small shapes cross many chunks and
 * chunk tails; some use the default chunk.
 *
 * <p>Tolerances (relative Frobenius error against the reference on the same rounded inputs): float32
 * results 1e-5 (sums of n products in float32; seen up to about 1e-6), results stored in BF16 4e-3
 * (one rounding, 2^-9). Seeds are fresh per run (printed on failure) unless -Dusp4j.test.seed is set.
 */
class CpuLinearAttentionKernelTest {

    private static final long BASE_SEED = Long.getLong("usp4j.test.seed", System.nanoTime());

    private static ForkJoinPool threePool;
    private static CpuLinearAttentionKernel smallChunks;
    private static final ReferenceLinearAttention REFERENCE = new ReferenceLinearAttention();

    @BeforeAll
    static void setUp() {
        threePool = new ForkJoinPool(3);
        smallChunks = new CpuLinearAttentionKernel(threePool, 8);
    }

    @AfterAll
    static void tearDown() {
        threePool.shutdownNow();
    }

    record Case(int batch, int seq, int heads, int kvHeads, int headDim, LinearMask mask, DType dtype,
                boolean states, float scale) {
        @Override
        public String toString() {
            return "b" + batch + " n" + seq + " h" + heads + "/" + kvHeads + " d" + headDim + " " + mask + " "
                    + dtype + (states ? " with states" : "") + " scale " + scale;
        }
    }

    static Stream<Case> cases() {
        List<Case> cases = new ArrayList<>();
        LinearMask[] masks = {LinearMask.NONE, LinearMask.causal(1), LinearMask.causal(0.9)};
        for (LinearMask m : masks) {
            for (boolean states : new boolean[] {false, true}) {
                cases.add(new Case(1, 1, 1, 1, 8, m, DType.F32, states, 1f));       // one row
                cases.add(new Case(2, 37, 4, 4, 33, m, DType.F32, states, 0.5f));   // odd head_dim, n not a chunk multiple
                cases.add(new Case(1, 50, 6, 2, 40, m, DType.F32, states, 1f));     // GQA
                cases.add(new Case(2, 29, 4, 1, 12, m, DType.BF16, states, 0.3f));  // MQA, bf16
                cases.add(new Case(1, 19, 3, 3, 5, m, DType.F16, states, 1f));      // head_dim below one vector
                cases.add(new Case(1, 64, 2, 2, 64, m, DType.F32, states, 0.125f));
            }
        }
        cases.add(new Case(1, 40, 2, 1, 16, LinearMask.causal(0.5), DType.F32, true, 1f)); // strong decay
        return cases.stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void forwardAndStatesMatchReference(Case c) {
        checkForward(smallChunks, c, DType.F32);
        checkStates(smallChunks, c);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void backwardMatchesReference(Case c) {
        checkBackward(smallChunks, c);
    }

    @Test
    void defaultChunksMatchReference() {
        CpuLinearAttentionKernel kernel = new CpuLinearAttentionKernel();
        for (LinearMask m : new LinearMask[] {LinearMask.NONE, LinearMask.causal(1), LinearMask.causal(0.99)}) {
            Case c = new Case(1, 300, 4, 2, 64, m, DType.BF16, true, 0.125f);
            checkForward(kernel, c, DType.F32);
            checkStates(kernel, c);
            checkBackward(kernel, c);
        }
    }

    @Test
    void outputsStoredInBf16AreRoundedOnce() {
        checkForward(smallChunks, new Case(1, 45, 2, 1, 24, LinearMask.causal(0.95), DType.BF16, true, 1f), DType.BF16);
    }

    @Test
    void aSingleThreadAndAnotherChunkGiveTheSameResultsAsTheReference() {
        ForkJoinPool one = new ForkJoinPool(1);
        try {
            CpuLinearAttentionKernel kernel = new CpuLinearAttentionKernel(one, 12);
            Case c = new Case(1, 50, 2, 1, 24, LinearMask.causal(0.97), DType.F32, true, 1f);
            checkForward(kernel, c, DType.F32);
            checkBackward(kernel, c);
        } finally {
            one.shutdownNow();
        }
    }

    @Test
    void badArgumentsAreRefusedWithTheirNames() {
        try (Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, DType.F32, 1, 1, 8, 2, 4);
            Tensor k = random(arena, DType.F32, 2, 1, 6, 2, 4);
            Tensor out = Tensor.allocate(arena, DType.F32, 1, 8, 2, 4);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> smallChunks.forward(q, k, k, LinearMask.NONE, 1f, null, out));
            assertTrue(e.getMessage().contains("one sequence"), e.getMessage());
            Tensor badState = Tensor.allocate(arena, DType.BF16, 1, 2, 4, 4);
            e = assertThrows(IllegalArgumentException.class,
                    () -> smallChunks.forward(q, q, q, LinearMask.NONE, 1f, badState, out));
            assertTrue(e.getMessage().contains("earlierState"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> LinearMask.causal(1.5));
            assertTrue(e.getMessage().contains("(0, 1]"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> new LinearMask(false, 0.9));
            assertTrue(e.getMessage().contains("causal"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> smallChunks.forward(q, q, q, LinearMask.NONE, Float.NaN, null, out));
            assertTrue(e.getMessage().contains("scale"), e.getMessage());
        }
    }

    private static void checkForward(LinearAttentionKernel kernel, Case c, DType outType) {
        try (Arena arena = Arena.ofShared()) {
            Inputs in = Inputs.of(arena, c);
            Tensor got = Tensor.allocate(arena, outType, in.q.shape());
            Tensor want = Tensor.allocate(arena, DType.F32, in.q.shape());
            kernel.forward(in.q, in.k, in.v, c.mask(), c.scale(), in.earlier, got);
            REFERENCE.forward(in.q, in.k, in.v, c.mask(), c.scale(), in.earlier, want);
            assertClose("out", got, want, outType == DType.F32 ? 1e-5 : 4e-3);
        }
    }

    private static void checkStates(LinearAttentionKernel kernel, Case c) {
        try (Arena arena = Arena.ofShared()) {
            Inputs in = Inputs.of(arena, c);
            long[] shape = {c.batch(), c.kvHeads(), c.headDim(), c.headDim()};
            Tensor got = Tensor.allocate(arena, DType.F32, shape);
            Tensor want = Tensor.allocate(arena, DType.F32, shape);
            kernel.keyValueState(in.k, in.v, c.mask(), got);
            REFERENCE.keyValueState(in.k, in.v, c.mask(), want);
            assertClose("keyValueState", got, want, 1e-5);
            kernel.queryGradientState(in.q, in.dout, c.mask(), got);
            REFERENCE.queryGradientState(in.q, in.dout, c.mask(), want);
            assertClose("queryGradientState", got, want, 1e-5);
            // addState: want += 0.25 * state, checked against the same sum in float64.
            double[] expected = HostTensors.toDoubleArray(want);
            double[] added = HostTensors.toDoubleArray(got);
            kernel.addState(want, got, 0.25f);
            double[] actual = HostTensors.toDoubleArray(want);
            for (int i = 0; i < expected.length; i++) {
                expected[i] += 0.25 * added[i];
            }
            assertTrue(HostTensors.relativeError(actual, expected) < 1e-6, "addState");
        }
    }

    private static void checkBackward(LinearAttentionKernel kernel, Case c) {
        try (Arena arena = Arena.ofShared()) {
            Inputs in = Inputs.of(arena, c);
            Tensor[] got = grads(arena, in, DType.F32);
            Tensor[] want = grads(arena, in, DType.F32);
            kernel.backward(in.q, in.k, in.v, in.dout, c.mask(), c.scale(), in.earlier, in.later, got[0], got[1], got[2]);
            REFERENCE.backward(in.q, in.k, in.v, in.dout, c.mask(), c.scale(), in.earlier, in.later, want[0], want[1],
                    want[2]);
            String[] names = {"dq", "dk", "dv"};
            for (int i = 0; i < 3; i++) {
                assertClose(names[i], got[i], want[i], 1e-5);
            }
        }
    }

    private static Tensor[] grads(Arena arena, Inputs in, DType dtype) {
        return new Tensor[] {Tensor.allocate(arena, dtype, in.q.shape()), Tensor.allocate(arena, dtype, in.k.shape()),
                Tensor.allocate(arena, dtype, in.v.shape())};
    }

    /** Random inputs of a case, with random states when it has them. */
    private record Inputs(Tensor q, Tensor k, Tensor v, Tensor dout, Tensor earlier, Tensor later) {
        static Inputs of(Arena arena, Case c) {
            long seed = BASE_SEED + c.hashCode();
            Tensor q = random(arena, c.dtype(), seed, c.batch(), c.seq(), c.heads(), c.headDim());
            Tensor k = random(arena, c.dtype(), seed + 1, c.batch(), c.seq(), c.kvHeads(), c.headDim());
            Tensor v = random(arena, c.dtype(), seed + 2, c.batch(), c.seq(), c.kvHeads(), c.headDim());
            Tensor dout = random(arena, c.dtype(), seed + 3, c.batch(), c.seq(), c.heads(), c.headDim());
            Tensor earlier = null;
            Tensor later = null;
            if (c.states()) {
                earlier = random(arena, DType.F32, seed + 4, c.batch(), c.kvHeads(), c.headDim(), c.headDim());
                later = random(arena, DType.F32, seed + 5, c.batch(), c.kvHeads(), c.headDim(), c.headDim());
            }
            return new Inputs(q, k, v, dout, earlier, later);
        }
    }

    private static Tensor random(Arena arena, DType dtype, long seed, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        HostTensors.fillNormal(t, seed);
        return t;
    }

    private static void assertClose(String name, Tensor actual, Tensor expected, double tolerance) {
        double error = HostTensors.relativeError(actual, expected);
        assertTrue(error <= tolerance, name + ": relative Frobenius error " + error + " > " + tolerance + ", seed "
                + BASE_SEED);
        assertEquals(expected.numel(), actual.numel());
    }
}
