package org.usp4j.sp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;
import org.usp4j.api.Mesh;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;

/**
 * Each rank's share of causal attention, as the engine counts it from the kernel calls made: the
 * unmasked (query, key) pairs per rank and pass. Contiguous shards on the plain ring leave the first
 * ranks idle (the last does about 2P - 1 times the first's work); zigzag, striped, TokenRing on zigzag
 * and LightSeq on contiguous shards are each within 10% between ranks. Together the ranks always
 * compute every pair of the sequence exactly once per batch element and head, forward and backward.
 */
class WorkBalanceTest {

    private static final int BATCH = 1;
    private static final int HEADS = 4;

    static Stream<Arguments> balanced() {
        return Stream.of(
                Arguments.of(RingAttention.ALGORITHM, SequenceLayout.ZIGZAG, new Mesh(1, 4)),
                Arguments.of(RingAttention.ALGORITHM, SequenceLayout.STRIPED, new Mesh(1, 4)),
                Arguments.of(TokenRingAttention.ALGORITHM, SequenceLayout.ZIGZAG, new Mesh(1, 4)),
                Arguments.of(TokenRingAttention.ALGORITHM, SequenceLayout.ZIGZAG, new Mesh(2, 4)),
                Arguments.of(TokenRingAttention.ALGORITHM, SequenceLayout.ZIGZAG, new Mesh(1, 3)),
                Arguments.of(LightSeqAttention.ALGORITHM, SequenceLayout.CONTIGUOUS, new Mesh(1, 4)),
                Arguments.of(LightSeqAttention.ALGORITHM, SequenceLayout.CONTIGUOUS, new Mesh(1, 3)),
                Arguments.of(LightSeqAttention.ALGORITHM, SequenceLayout.CONTIGUOUS, new Mesh(1, 8)),
                Arguments.of(LightSeqAttention.ALGORITHM, SequenceLayout.CONTIGUOUS, new Mesh(2, 4)),
                Arguments.of(AllGatherAttention.ALGORITHM, SequenceLayout.ZIGZAG, new Mesh(1, 4)));
    }

    @ParameterizedTest(name = "{0} {1} on {2}")
    @MethodSource("balanced")
    void causalWorkIsWithinTenPercentBetweenRanks(RingAlgorithm algorithm, SequenceLayout layout, Mesh mesh) {
        long seq = 64L * mesh.size();
        List<long[]> pairs = pairsPerRank(algorithm, layout, mesh, seq);
        for (long[] pass : pairs) {
            assertEquals(BATCH * HEADS * seq * (seq + 1) / 2, Arrays.stream(pass).sum(),
                    "every unmasked pair once");
            double spread = (double) max(pass) / min(pass);
            assertTrue(spread <= 1.10, algorithm + " " + layout + ": max/min pairs " + spread + " of "
                    + Arrays.toString(pass));
        }
    }

    @ParameterizedTest(name = "P = {0}")
    @MethodSource("ringSizes")
    void contiguousShardsOnThePlainRingLeaveTheFirstRanksIdle(int p) {
        long seq = 64L * p;
        long s = seq / p;
        for (long[] pass : pairsPerRank(RingAttention.ALGORITHM, SequenceLayout.CONTIGUOUS, new Mesh(1, p), seq)) {
            // Rank g attends its diagonal block and the g whole blocks before it.
            for (int g = 0; g < p; g++) {
                assertEquals(BATCH * HEADS * (s * (s + 1) / 2 + g * s * s), pass[g], "rank " + g);
            }
            double ratio = (double) pass[p - 1] / pass[0];
            assertTrue(ratio > 0.95 * (2 * p - 1) && ratio < 2 * p - 1, "last over first " + ratio + ", 2P-1 = " + (2 * p - 1));
        }
    }

    static Stream<Integer> ringSizes() {
        return Stream.of(2, 4, 8);
    }

    /** Forward and backward attention pairs of every rank, as the engine reports them. */
    private static List<long[]> pairsPerRank(RingAlgorithm algorithm, SequenceLayout layout, Mesh mesh, long seq) {
        UspPlan plan = new UspPlan(mesh, new AttentionOptions(true, layout, null), algorithm);
        try (AttentionEngine engine = AttentionEngine.inProcess(plan, r -> new CpuBackend(new ReferenceAttention()),
                Duration.ofSeconds(30))) {
            engine.dealRandom(new AttentionShapes(BATCH, seq, seq, HEADS, 2, 8), DType.F32, 7);
            AttentionEngine.Pass forward = engine.forward();
            AttentionEngine.Pass backward = engine.backward();
            return List.of(forward.ranks().stream().mapToLong(AttentionEngine.RankPass::attentionPairs).toArray(),
                    backward.ranks().stream().mapToLong(AttentionEngine.RankPass::attentionPairs).toArray());
        }
    }

    private static long max(long[] values) {
        return Arrays.stream(values).max().orElseThrow();
    }

    private static long min(long[] values) {
        return Arrays.stream(values).min().orElseThrow();
    }
}
