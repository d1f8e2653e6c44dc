package org.usp4j.sp;

import java.util.Objects;
import java.util.function.IntFunction;
import org.usp4j.api.Mesh;
import org.usp4j.backend.Backend;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;

/**
 * What every rank of one distributed attention runs: USP on {@code mesh} (Ulysses over U ranks around
 * {@code ringAlgorithm} over R ranks) under {@code options}. It checks a global problem before any
 * work, makes each rank's strategy, and predicts each rank's bytes: the Ulysses all-to-all plus the ring
 * algorithm's own model.
 */
public record UspPlan(Mesh mesh, AttentionOptions options, RingAlgorithm ringAlgorithm) {

    public UspPlan {
        Objects.requireNonNull(mesh, "mesh");
        Objects.requireNonNull(options, "options");
        Objects.requireNonNull(ringAlgorithm, "ringAlgorithm");
    }

    /** USP with the default ring algorithm. */
    public UspPlan(Mesh mesh, AttentionOptions options) {
        this(mesh, options, RingAlgorithms.defaultAlgorithm());
    }

    /**
     * Throws an {@link IllegalArgumentException} naming the values when a self-attention of these global
     * shapes cannot run on this plan: sequence divisibility for the layout, heads for U, a layout the
     * ring algorithm does not support. Needs no rank.
     */
    public void validate(AttentionShapes global) {
        if (global.seqQ() != global.seqKv()) {
            throw new IllegalArgumentException("q has sequence length " + global.seqQ() + " but k and v have "
                    + global.seqKv() + " (self-attention over one sequence)");
        }
        if (!ringAlgorithm.layouts().contains(options.layout())) {
            throw new IllegalArgumentException("ring algorithm " + ringAlgorithm.name() + " does not support the "
                    + options.layout().label() + " layout (it supports " + String.join(", ",
                    ringAlgorithm.layouts().stream().map(SequenceLayout::label).toList()) + ")");
        }
        options.layout().validate(global.seqQ(), mesh);
        UlyssesAllToAll.validateHeads(global.heads(), global.kvHeads(), mesh.ulysses());
    }

    /**
     * As {@link #validate(AttentionShapes)}, for packed sequences with these global boundaries (null:
     * one sequence): they must end at S, b must be 1, the ring algorithm must keep attention inside
     * sequences, and the layout must be able to deal them (zigzag: every length divisible by 2P).
     */
    public void validate(AttentionShapes global, SequenceBoundaries sequences) {
        validate(global);
        if (sequences == null) {
            return;
        }
        sequences.requireTotal(global.seqQ());
        if (!sequences.isSingle()) {
            if (global.batch() != 1) {
                throw new IllegalArgumentException("packed sequences (cu_seqlens) need batch b = 1, got b = "
                        + global.batch());
            }
            if (!ringAlgorithm.supportsPackedSequences()) {
                throw new IllegalArgumentException("ring algorithm " + ringAlgorithm.name()
                        + " does not support packed variable-length sequences (cu_seqlens); "
                        + RingAlgorithms.packedSequenceNames() + " do");
            }
        }
        options.layout().validate(sequences, mesh);
    }

    /** One rank's shapes: b, S/P, h, h_kv, d. */
    public AttentionShapes localShapes(AttentionShapes global) {
        validate(global);
        long local = global.seqQ() / mesh.size();
        return new AttentionShapes(global.batch(), local, local, global.heads(), global.kvHeads(), global.headDim());
    }

    /** One rank's strategy over its mesh groups. */
    public UspAttention create(MeshGroups groups, Backend backend) {
        if (!groups.mesh().equals(mesh)) {
            throw new IllegalArgumentException("groups of mesh " + groups.mesh() + " for a plan on mesh " + mesh);
        }
        return new UspAttention(groups, backend, options, ringAlgorithm);
    }

    /** Bytes rank {@code rank} of the mesh sends in a forward: its Ulysses exchange plus its ring rank's share. */
    public RankBytes forwardBytes(AttentionShapes global, DType dtype, int rank) {
        AttentionShapes local = localShapes(global);
        return UlyssesAllToAll.allToAllBytes(local, dtype, mesh.ulysses())
                .plus(ringAlgorithm.forwardBytes(ringBlock(local), dtype, mesh.ring(), mesh.ringRank(rank), options));
    }

    /** Bytes rank {@code rank} of the mesh sends in a backward. */
    public RankBytes backwardBytes(AttentionShapes global, DType dtype, int rank) {
        AttentionShapes local = localShapes(global);
        return UlyssesAllToAll.allToAllBytes(local, dtype, mesh.ulysses())
                .plus(ringAlgorithm.backwardBytes(ringBlock(local), dtype, mesh.ring(), mesh.ringRank(rank), options));
    }

    /**
     * Bytes each rank sends in a forward, for algorithms where every rank sends the same; an
     * {@link IllegalStateException} where the ranks differ (ask {@link #forwardBytes(AttentionShapes, DType, int)}).
     */
    public RankBytes forwardBytes(AttentionShapes global, DType dtype) {
        return sameOnEveryRank("forward", r -> forwardBytes(global, dtype, r));
    }

    /** As {@link #forwardBytes(AttentionShapes, DType)}, for a backward. */
    public RankBytes backwardBytes(AttentionShapes global, DType dtype) {
        return sameOnEveryRank("backward", r -> backwardBytes(global, dtype, r));
    }

    private RankBytes sameOnEveryRank(String pass, IntFunction<RankBytes> perRank) {
        RankBytes first = perRank.apply(0);
        for (int r = 1; r < mesh.size(); r++) {
            if (!perRank.apply(r).equals(first)) {
                throw new IllegalStateException(ringAlgorithm.name() + "'s " + pass + " bytes differ between ranks ("
                        + first + " on rank 0, " + perRank.apply(r) + " on rank " + r + "): ask per rank");
            }
        }
        return first;
    }

    /** What the ring algorithm sees after the Ulysses exchange: U s_loc rows, h/U heads, h_kv'/U KV heads. */
    private AttentionShapes ringBlock(AttentionShapes local) {
        int u = mesh.ulysses();
        long rows = Math.multiplyExact(local.seqQ(), (long) u);
        return new AttentionShapes(local.batch(), rows, rows, local.heads() / u,
                UlyssesAllToAll.exchangedKvHeads(local.kvHeads(), u) / u, local.headDim());
    }

    @Override
    public String toString() {
        return "USP " + mesh.ulysses() + "x" + mesh.ring() + " with " + ringAlgorithm.name() + ", " + options;
    }
}
