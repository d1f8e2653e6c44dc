package org.usp4j.api.example;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import org.usp4j.api.AttentionOptions;
import org.usp4j.api.InProcessWorld;
import org.usp4j.api.LinearAttentionOptions;
import org.usp4j.api.Mesh;
import org.usp4j.api.RingAlgorithm;
import org.usp4j.api.SequenceLayout;
import org.usp4j.api.example.ToyTransformerExample.RankStep;
import org.usp4j.api.example.ToyTransformerExample.Shape;
import org.usp4j.api.example.ToyTransformerExample.Staging;
import org.usp4j.api.example.ToyTransformerExample.Weights;

/**
 * The README's hybrid model (LASP-2H), which it quotes from the region between the {@code README:begin}
 * and {@code README:end} markers ({@code ReadmeExampleTest} keeps them equal): the blocks of
 * {@link ToyTransformerExample}, y = x + attention(x Wq, x Wk, x Wv), with linear attention (LASP-2)
 * in the even layers and softmax attention with K/V all-gathered in the odd ones.
 */
public final class HybridModelExample {

    private HybridModelExample() {
    }

    // README:begin
    /** The linear layers: causal, each position back weighted 0.9, q . k scaled by 1/d (no softmax tames it). */
    public static LinearAttentionOptions linear(Shape shape) {
        return LinearAttentionOptions.causal(0.9).withScale(1.0 / shape.headDim());
    }

    /** The softmax layers: causal, K/V gathered across each ring once per layer. */
    public static final AttentionOptions SOFTMAX =
            AttentionOptions.defaults().withCausal(true).withRingAlgorithm(RingAlgorithm.ALLGATHER);

    /** One training step: linear layers (LASP-2) and softmax layers alternate, all dealt contiguously. */
    public static List<RankStep> step(InProcessWorld world, Mesh mesh, Shape shape, List<Weights> layers,
                                      MemorySegment x, MemorySegment dy, Arena arena) {
        return ToyTransformerExample.step(world, mesh, SequenceLayout.CONTIGUOUS, (rank, layer) -> layer % 2 == 0
                ? rank.newLinearAttention(mesh, linear(shape)) : rank.newAttention(mesh, SOFTMAX),
                shape, layers, x, dy, Staging.HOST, arena);
    }
    // README:end
}
