package org.usp4j.sp;

import java.util.Objects;
import org.usp4j.backend.Backend;
import org.usp4j.comm.Communicator;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * What the strategies over one ring group that cut their work with {@link RingStep} share: the group,
 * the backend, the options, and the checks every rank makes before any transfer: the block rules, then
 * the kernel's verdict on every step any ring rank will run, so that a refusal is the same on every rank.
 */
abstract class RingGroupAttention implements SequenceParallelAttention {

    final Communicator ring;
    final Backend backend;
    final AttentionOptions options;
    private final String name;

    RingGroupAttention(String name, Communicator ring, Backend backend, AttentionOptions options) {
        this.name = name;
        this.ring = Objects.requireNonNull(ring, "ring");
        this.backend = Objects.requireNonNull(backend, "backend");
        this.options = Objects.requireNonNull(options, "options");
    }

    @Override
    public final void validate(AttentionShapes local, DType dtype) {
        validate(local, dtype, null);
    }

    @Override
    public final void validateBackward(AttentionShapes local, DType dtype) {
        validateBackward(local, dtype, (SequenceBoundaries) null);
    }

    @Override
    public final void validate(AttentionShapes local, DType dtype, SequenceBoundaries sequences) {
        RingStep.requireBlock(name, local, options);
        validateSteps(local, dtype, blocks(local, sequences), false);
    }

    @Override
    public final void validateBackward(AttentionShapes local, DType dtype, SequenceBoundaries sequences) {
        RingStep.requireBlock(name, local, options);
        validateSteps(local, dtype, blocks(local, sequences), true);
    }

    /** The kernel's checks on every step any ring rank runs on these blocks. */
    final void validateSteps(AttentionShapes local, DType dtype, PackedRingBlocks blocks, boolean backward) {
        RingStep.validateKernelSteps(backend.kernel(), options, ring.size(), local, dtype, blocks, backward);
    }

    /** The ring's blocks of these packed sequences (null: one sequence per batch row). */
    final PackedRingBlocks blocks(AttentionShapes local, SequenceBoundaries sequences) {
        return PackedRingBlocks.forRing(sequences, options.layout(), ring.size(), local.seqQ());
    }

    @Override
    public final Forward forward(Tensor q, Tensor k, Tensor v) {
        return forward(q, k, v, null);
    }
}
