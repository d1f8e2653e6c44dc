package org.usp4j.api.example;

import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.api.Test;
import org.usp4j.api.LinearAttentionOptions;
import org.usp4j.api.Mesh;
import org.usp4j.api.example.ToyTransformerExampleTest.Model;
import org.usp4j.api.example.ToyTransformerExampleTest.Oracle;
import org.usp4j.kernel.LinearMask;
import org.usp4j.kernel.ReferenceLinearAttention;

/**
 * The README's hybrid model (LASP-2H: linear attention with LASP-2 in layers 0 and 2, softmax attention
 * with the all-gather strategy in layers 1 and 3) one training step on 4 in-process CPU ranks, float32,
 * through the worked example's checks:
 * <ul>
 *   <li>every layer's out, dq, dk, dv against float64 attention of its kind over the gathered
 *       whole-sequence inputs ({@link ReferenceLinearAttention} with the layer's decay and scale, or causal
 *       softmax), and y, dLoss/dx and every layer's dq against the same code on one rank: relative
 *       Frobenius error at most 2e-5 on meshes 2x2 and 1x4 (measured: up to 1.5e-6 against float64 and
 *       3.2e-6 against one rank, whose inputs to the later layers differ by the earlier layers' float32
 *       rounding);</li>
 *   <li>dLoss/dx against central finite differences of loss = sum(y * dy) (eps 1e-2): absolute error at
 *       most 1e-3 + 5e-3 |dx|. Measured: up to 0.039 on |dx| of 10.8 (1.4 to 63 over the coordinates);
 *       that is the differences' O(eps^2) truncation through four layers without normalisation (0.32,
 *       0.096, 0.039 at eps 4e-2, 2e-2, 1e-2), not usp4j's, whose attention gradients the float64 check
 *       bounds at 1e-5.</li>
 * </ul>
 */
class HybridModelExampleTest {

    static final int LAYERS = 4;

    static final Model HYBRID = (world, mesh, layers, x, dy, arena) ->
            HybridModelExample.step(world, mesh, ToyTransformerExampleTest.SHAPE, layers, x, dy, arena);

    /** Causal linear attention with the example's decay and scale: {@link ReferenceLinearAttention}. */
    static final Oracle LINEAR = (q, k, v, dout, out, dq, dk, dv) -> {
        LinearAttentionOptions options = HybridModelExample.linear(ToyTransformerExampleTest.SHAPE);
        LinearMask mask = LinearMask.causal(options.decay());
        float scale = (float) options.scale();
        ReferenceLinearAttention ref = new ReferenceLinearAttention();
        ref.forward(q, k, v, mask, scale, null, out);
        ref.backward(q, k, v, dout, mask, scale, null, null, dq, dk, dv);
    };

    @ParameterizedTest(name = "mesh {0}x{1}")
    @CsvSource({"2, 2", "1, 4"})
    void fourRanksEqualFloat64AttentionOfEachKindAndOneRank(int ulysses, int ring) {
        List<Oracle> oracles = List.of(LINEAR, ToyTransformerExampleTest.CAUSAL_SOFTMAX, LINEAR,
                ToyTransformerExampleTest.CAUSAL_SOFTMAX);
        ToyTransformerExampleTest.fourRanksEqualFloat64AttentionAndOneRank(HYBRID, new Mesh(ulysses, ring), oracles,
                2e-5);
    }

    @Test
    void dxEqualsFiniteDifferencesOfTheLoss() {
        ToyTransformerExampleTest.dxEqualsFiniteDifferencesOfTheLoss(HYBRID, LAYERS, 1e-2, 1e-3, 5e-3);
    }
}
