package org.usp4j.sp;

import java.util.Set;
import org.usp4j.backend.Backend;
import org.usp4j.comm.Communicator;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.tensor.DType;

/**
 * One way to attend over the R ranks of a ring group, the inner part of USP (Ulysses over U ranks
 * around it): ring passing, all-gather, and later TokenRing, LightSeq, LASP-2. An algorithm is one class
 * implementing {@link SequenceParallelAttention}, plus this description of it: its name (as in
 * {@code --ring-algo}), the layouts it supports, and its cost model. Register it in {@link RingAlgorithms}.
 *
 * <p>"Block" shapes are what one ring rank's instance sees after the Ulysses exchange: b, S/R rows,
 * h/U heads, h_kv'/U KV heads (h_kv' = max(h_kv, U)), d.
 */
public interface RingAlgorithm {

    /** The registry name, lower case, as on the command line. */
    String name();

    /** The layouts this algorithm gives correct results on. */
    Set<SequenceLayout> layouts();

    /**
     * Whether {@link SequenceParallelAttention#forward(org.usp4j.tensor.Tensor, org.usp4j.tensor.Tensor,
     * org.usp4j.tensor.Tensor, org.usp4j.kernel.SequenceBoundaries)} keeps attention inside packed
     * sequences; the plan refuses packed inputs for algorithms that do not, before any work.
     */
    default boolean supportsPackedSequences() {
        return false;
    }

    /** One rank's instance over its ring group. */
    SequenceParallelAttention create(Communicator ring, Backend backend, AttentionOptions options);

    /** Bytes one ring rank sends in a forward, for its block shapes, dtype and ring size R. */
    RankBytes forwardBytes(AttentionShapes block, DType dtype, int ringSize);

    /** Bytes one ring rank sends in a backward. */
    RankBytes backwardBytes(AttentionShapes block, DType dtype, int ringSize);

    /**
     * Bytes ring rank {@code ringRank} sends in a forward under {@code options}. Most algorithms send the
     * same on every rank under every mask ({@link #forwardBytes(AttentionShapes, DType, int)}); one whose
     * traffic follows the rank and the mask (LightSeq's helpers) overrides this.
     */
    default RankBytes forwardBytes(AttentionShapes block, DType dtype, int ringSize, int ringRank,
                                   AttentionOptions options) {
        return forwardBytes(block, dtype, ringSize);
    }

    /** As {@link #forwardBytes(AttentionShapes, DType, int, int, AttentionOptions)}, for a backward. */
    default RankBytes backwardBytes(AttentionShapes block, DType dtype, int ringSize, int ringRank,
                                    AttentionOptions options) {
        return backwardBytes(block, dtype, ringSize);
    }

    /** Makes one rank's instance of an algorithm over its ring group. */
    @FunctionalInterface
    interface Factory {
        SequenceParallelAttention create(Communicator ring, Backend backend, AttentionOptions options);
    }

    /** Bytes one ring rank sends in one pass, the same on every rank: block shapes, dtype, ring size R. */
    @FunctionalInterface
    interface PassBytes {
        RankBytes of(AttentionShapes block, DType dtype, int ringSize);
    }

    /**
     * An algorithm that sends the same bytes on every rank under every mask: its name, layouts, whether it
     * takes packed sequences, how to make it, and its forward and backward byte formulas.
     */
    static RingAlgorithm of(String name, Set<SequenceLayout> layouts, boolean packedSequences, Factory factory,
                            PassBytes forward, PassBytes backward) {
        Set<SequenceLayout> supported = Set.copyOf(layouts);
        return new RingAlgorithm() {
            @Override
            public String name() {
                return name;
            }

            @Override
            public Set<SequenceLayout> layouts() {
                return supported;
            }

            @Override
            public boolean supportsPackedSequences() {
                return packedSequences;
            }

            @Override
            public SequenceParallelAttention create(Communicator ring, Backend backend, AttentionOptions options) {
                return factory.create(ring, backend, options);
            }

            @Override
            public RankBytes forwardBytes(AttentionShapes block, DType dtype, int ringSize) {
                return forward.of(block, dtype, ringSize);
            }

            @Override
            public RankBytes backwardBytes(AttentionShapes block, DType dtype, int ringSize) {
                return backward.of(block, dtype, ringSize);
            }

            @Override
            public String toString() {
                return name;
            }
        };
    }
}
