package org.usp4j.gpu.sdpa;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.HashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;
import org.usp4j.cudnn.DataType;
import org.usp4j.gpu.GraphSpec.Op;
import org.usp4j.gpu.GraphSpec.Pointwise;
import org.usp4j.cudnn.PointwiseMode;
import org.usp4j.gpu.GraphSpec.Tensor;
import org.usp4j.gpu.GraphSpec;

/** Structure of the composite SDPA graphs (no native code involved). */
class SdpaGraphsTest {


    @ParameterizedTest
    @CsvSource({"false,8,8,10", "true,8,8,14", "false,8,2,10", "true,8,1,14"})
    void forwardHasTheCompositeOps(boolean causal, long heads, long kvHeads, int expectedOps) {
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(2, heads, kvHeads, 256, 384, 64);
        GraphSpec g = SdpaGraphs.forward(s, DataType.BFLOAT16, causal, SdpaGraphs.contiguousStrides(s, 4), 91400);
        assertEquals(expectedOps, g.ops().size(), g::toString);
        assertWellFormed(g);
        Tensor stats = g.tensor(SdpaGraphs.STATS);
        assertArrayEquals(new long[] {2, heads, 256, 1}, stats.dims());
        assertArrayEquals(new long[] {heads * 256, 256, 1, 1}, stats.strides());
        assertEquals(DataType.FLOAT, stats.type());
        // K enters transposed: [b, h_kv, d, s_kv] with the sequence stride last.
        Tensor kt = g.tensor(SdpaGraphs.K);
        assertArrayEquals(new long[] {2, kvHeads, 64, 384}, kt.dims());
        assertArrayEquals(new long[] {384 * kvHeads * 64, 64, 1, kvHeads * 64}, kt.strides());
        Set<Long> bound = uids(g.boundTensors());
        Set<Long> expected = new HashSet<>(List.of(SdpaGraphs.Q, SdpaGraphs.K, SdpaGraphs.V, SdpaGraphs.O, SdpaGraphs.STATS, SdpaGraphs.SCALE));
        if (causal) {
            expected.add(SdpaGraphs.NEG_INF);
        }
        assertEquals(expected, bound);
        // The second matmul reads P in the io type.
        Op last = g.ops().get(g.ops().size() - 1);
        assertEquals(DataType.BFLOAT16, last.inputs().get(0).type());
    }

    @ParameterizedTest
    @CsvSource({"false,8,8,18", "true,8,8,22", "false,8,2,20", "true,4,1,24"})
    void backwardHasTheCompositeOps(boolean causal, long heads, long kvHeads, int expectedOps) {
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(1, heads, kvHeads, 128, 128, 40);
        GraphSpec g = SdpaGraphs.backward(s, DataType.HALF, causal, SdpaGraphs.contiguousStrides(s, 8), 90500);
        assertEquals(expectedOps, g.ops().size(), g::toString);
        assertWellFormed(g);
        Set<Long> expected = new HashSet<>(List.of(SdpaGraphs.Q, SdpaGraphs.K, SdpaGraphs.V, SdpaGraphs.O, SdpaGraphs.DO,
                SdpaGraphs.DQ, SdpaGraphs.DK, SdpaGraphs.DV, SdpaGraphs.STATS, SdpaGraphs.SOFTMAX_SUM,
                SdpaGraphs.DQ_ACCUM, SdpaGraphs.SCALE, SdpaGraphs.ONE));
        if (causal) {
            expected.add(SdpaGraphs.NEG_INF);
        }
        assertEquals(expected, uids(g.boundTensors()));
        // The float32 scratch tensors must be dense (engines corrupt gradients otherwise).
        assertArrayEquals(new long[] {heads * 128, 128, 1, 1}, g.tensor(SdpaGraphs.SOFTMAX_SUM).strides());
        assertArrayEquals(new long[] {heads * 128 * 40, 128 * 40, 40, 1}, g.tensor(SdpaGraphs.DQ_ACCUM).strides());
        // The causal mask comes after subtracting the stats.
        if (causal) {
            int sub = indexOf(g, PointwiseMode.SUB);
            int select = indexOf(g, PointwiseMode.BINARY_SELECT);
            assertTrue(sub < select, g::toString);
        }
    }

    @ParameterizedTest
    @CsvSource({"200,91400,true", "200,91600,false", "256,91400,false", "200,90500,true"})
    void backwardAddsThePaddingWorkaroundUpTo915(long seqKv, long version, boolean padded) {
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(2, 4, 4, 96, seqKv, 64);
        GraphSpec g = SdpaGraphs.backward(s, DataType.BFLOAT16, true, SdpaGraphs.contiguousStrides(s, 8), version);
        assertWellFormed(g);
        Set<Long> bound = uids(g.boundTensors());
        assertEquals(padded, bound.contains(SdpaGraphs.SEQ_LEN_Q), g::toString);
        assertEquals(padded, bound.contains(SdpaGraphs.SEQ_LEN_KV));
        int extra = padded ? (version < 91000 ? 12 : 6) : 0;
        assertEquals(22 + extra, g.ops().size(), g::toString);
        if (padded) {
            Tensor seqLen = g.tensor(SdpaGraphs.SEQ_LEN_KV);
            assertEquals(DataType.INT32, seqLen.type());
            assertArrayEquals(new long[] {2, 1, 1, 1}, seqLen.dims());
            long overridden = g.ops().stream().filter(op -> op instanceof GraphSpec.Matmul m && m.mOverride() != null).count();
            assertEquals(5, overridden, "every matmul is bounded by the sequence lengths");
        }
    }

    @Test
    void maskFillFollowsTheVersion() {
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(1, 2, 2, 64, 64, 64);
        assertTrue(g(s, 91000).contains("-Infinity"));
        assertTrue(g(s, 90900).contains(String.valueOf(-Float.MAX_VALUE)));
    }

    private static String g(SdpaGraphs.Shape s, long version) {
        return SdpaGraphs.forward(s, DataType.HALF, true, SdpaGraphs.contiguousStrides(s, 4), version).tensors().toString();
    }

    @Test
    void stridedViewsKeepTheirStrides() {
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(1, 4, 4, 64, 128, 32);
        long[][] strides = SdpaGraphs.contiguousStrides(s, 4);
        strides[0] = new long[] {99999, 4 * 32 * 2, 32, 1}; // q is a slice of a tensor twice as long
        GraphSpec g = SdpaGraphs.forward(s, DataType.BFLOAT16, false, strides, 91400);
        assertArrayEquals(new long[] {99999, 32, 256, 1}, g.tensor(SdpaGraphs.Q).strides());
    }

    @Test
    void rejectsNonContiguousHeadDimAndBadShapes() {
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(1, 4, 4, 64, 64, 32);
        long[][] strides = SdpaGraphs.contiguousStrides(s, 4);
        strides[2] = new long[] {8192, 128, 32, 2};
        assertThrows(IllegalArgumentException.class,
                () -> SdpaGraphs.forward(s, DataType.BFLOAT16, false, strides, 91400));
        assertThrows(IllegalArgumentException.class, () -> new SdpaGraphs.Shape(1, 6, 4, 64, 64, 32));
        assertThrows(IllegalArgumentException.class, () -> new SdpaGraphs.Shape(1, 4, 4, 0, 64, 32));
    }

    @Test
    void backwardRefusesWhatCudnnFrontendRefuses() {
        SdpaGraphs.Shape s = new SdpaGraphs.Shape(1, 4, 4, 128, 128, 64);
        long[][] strides = SdpaGraphs.contiguousStrides(s, 8);
        for (long buggy : new long[] {91000, 91001}) {
            UnsupportedOperationException e = assertThrows(UnsupportedOperationException.class,
                    () -> SdpaGraphs.backward(s, DataType.BFLOAT16, true, strides, buggy));
            assertTrue(e.getMessage().contains(String.valueOf(buggy)), e.getMessage());
        }
        SdpaGraphs.backward(s, DataType.BFLOAT16, true, strides, 91002); // 9.10.2 is fixed
        SdpaGraphs.Shape single = new SdpaGraphs.Shape(2, 4, 4, 1, 1, 64);
        assertThrows(IllegalArgumentException.class, () -> SdpaGraphs.backward(single, DataType.BFLOAT16, false,
                SdpaGraphs.contiguousStrides(single, 8), 90501));
        SdpaGraphs.Shape oneQuery = new SdpaGraphs.Shape(2, 4, 4, 1, 64, 64);
        SdpaGraphs.backward(oneQuery, DataType.BFLOAT16, false, SdpaGraphs.contiguousStrides(oneQuery, 8), 90501);
    }

    private static int indexOf(GraphSpec g, PointwiseMode mode) {
        for (int i = 0; i < g.ops().size(); i++) {
            if (g.ops().get(i) instanceof Pointwise p && p.mode() == mode) {
                return i;
            }
        }
        return -1;
    }

    private static Set<Long> uids(List<Tensor> tensors) {
        Set<Long> set = new HashSet<>();
        tensors.forEach(t -> set.add(t.uid()));
        return set;
    }

    /** Unique uids; every op input is bound or produced by an earlier op; each virtual produced once. */
    private static void assertWellFormed(GraphSpec g) {
        Set<Long> seen = new HashSet<>();
        for (Tensor t : g.tensors()) {
            assertTrue(seen.add(t.uid()), "duplicate uid " + t.uid());
        }
        Set<Long> available = uids(g.boundTensors());
        Set<Long> produced = new HashSet<>();
        for (Op op : g.ops()) {
            for (Tensor in : op.inputs()) {
                assertTrue(available.contains(in.uid()), () -> in + " used before it is produced in\n" + g);
            }
            assertTrue(produced.add(op.output().uid()), "produced twice: " + op.output());
            available.add(op.output().uid());
            assertFalse(op.output().byValue(), "writes a by-value scalar: " + op);
        }
    }
}
