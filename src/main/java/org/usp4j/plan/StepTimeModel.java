package org.usp4j.plan;

import java.util.Objects;
import org.usp4j.api.Mesh;
import org.usp4j.bench.AttentionFlops;
import org.usp4j.comm.TrafficKind;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.RankBytes;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UlyssesAllToAll;
import org.usp4j.sp.UspPlan;

/**
 * The predicted time and memory of one training step's attention (forward and backward) of a group of
 * sequences on one U x R mesh, under a {@link CostProfile}. The group runs its sequences as one packed
 * call, so per sequence of (padded) length s on p = U R ranks:
 * <ul>
 *   <li>compute = (forward FLOPs / forward rate + backward FLOPs / backward rate) / p, FLOPs over unmasked
 *       pairs ({@link AttentionFlops}: ~ s^2, halved when causal; zigzag balances the ranks);</li>
 *   <li>all-to-all = the bytes one rank sends in USP's cost model ({@link UspPlan#forwardBytes}, {@link UspPlan#backwardBytes}) (forward + backward, ~ s) / bandwidth;</li>
 *   <li>ring = the ring's bytes in USP's cost model ({@link UspPlan#forwardBytes}, {@link UspPlan#backwardBytes}) (~ s) / the p2p bandwidth;</li>
 * </ul>
 * and per group call a fixed cost: 8 all-to-alls (U > 1), 2R - 1 ring steps (R > 1) and 2R kernel calls.
 * The ring's transfers overlap its compute and the all-to-alls do not, so the group takes
 * all-to-all + max(compute, ring) + fixed. Sequences are padded to a multiple of p (2p when causal,
 * for the zigzag layout).
 *
 * <p>Memory per rank is the attention's own working set in this implementation, an estimate (s_loc = s/p,
 * e the element size, h_kv' = max(h_kv, U)): the rank's q, out, dout, dq and k, v, dk, dv shards; their
 * Ulysses-exchanged copies when U > 1; two incoming K/V blocks and the float32 dK/dV accumulators (own and
 * travelling) when R > 1; the float32 LSE and dq accumulator. The packed call holds all its sequences at once.
 */
public final class StepTimeModel {

    /** One sequence's share of a group's time, and its memory per rank. */
    public record SequenceCost(double computeSeconds, double allToAllSeconds, double p2pSeconds, long memoryBytes) {
    }

    private final CostProfile profile;
    private final PlanShape shape;

    public StepTimeModel(CostProfile profile, PlanShape shape) {
        this.profile = Objects.requireNonNull(profile, "profile");
        this.shape = Objects.requireNonNull(shape, "shape");
    }

    public CostProfile profile() {
        return profile;
    }

    public PlanShape shape() {
        return shape;
    }

    /** Whether the shape's heads allow Ulysses degree {@code u} (as {@link UlyssesAllToAll#validateHeads}). */
    public boolean allows(Mesh mesh) {
        try {
            UlyssesAllToAll.validateHeads(shape.heads(), shape.kvHeads(), mesh.ulysses());
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    /** {@code length} rounded up to what the mesh's layout deals evenly: p, or 2p when causal (zigzag). */
    public long paddedLength(long length, Mesh mesh) {
        if (length < 1) {
            throw new IllegalArgumentException("sequence length must be >= 1, got " + length);
        }
        long unit = (shape.causal() ? 2L : 1L) * mesh.size();
        return Math.multiplyExact(Math.ceilDiv(length, unit), unit);
    }

    /** The cost of one sequence of {@code length} tokens on {@code mesh} (see the class comment). */
    public SequenceCost cost(long length, Mesh mesh) {
        if (!allows(mesh)) {
            throw new IllegalArgumentException("mesh " + label(mesh) + " does not fit the heads: " + shape);
        }
        long s = paddedLength(length, mesh);
        int p = mesh.size();
        double compute = (AttentionFlops.forward(1, shape.heads(), s, shape.headDim(), shape.causal())
                / profile.forwardFlopsPerSecond()
                + AttentionFlops.backward(1, shape.heads(), s, shape.headDim(), shape.causal())
                / profile.backwardFlopsPerSecond()) / p;
        UspPlan usp = new UspPlan(mesh, new AttentionOptions(shape.causal(),
                shape.causal() ? SequenceLayout.ZIGZAG : SequenceLayout.CONTIGUOUS, null));
        AttentionShapes global = new AttentionShapes(1, s, s, shape.heads(), shape.kvHeads(), shape.headDim());
        RankBytes bytes = usp.forwardBytes(global, shape.dtype()).plus(usp.backwardBytes(global, shape.dtype()));
        return new SequenceCost(compute, bytes.get(TrafficKind.ALL_TO_ALL) / profile.allToAllBytesPerSecond(),
                bytes.get(TrafficKind.P2P) / profile.p2pBytesPerSecond(), memoryBytes(s, mesh));
    }

    /** The fixed cost of one group call on {@code mesh}, however many sequences it packs. */
    public double callSeconds(Mesh mesh) {
        int u = mesh.ulysses();
        int r = mesh.ring();
        return (u > 1 ? 8 * profile.allToAllLatencySeconds() : 0)
                + (r > 1 ? (2 * r - 1) * profile.p2pLatencySeconds() : 0)
                + 2 * r * profile.kernelCallSeconds();
    }

    /** The predicted seconds of a group on {@code mesh} running {@code lengths}; 0 for no sequence. */
    public double groupSeconds(Mesh mesh, long... lengths) {
        if (lengths.length == 0) {
            return 0;
        }
        double compute = 0;
        double allToAll = 0;
        double p2p = 0;
        for (long s : lengths) {
            SequenceCost c = cost(s, mesh);
            compute += c.computeSeconds();
            allToAll += c.allToAllSeconds();
            p2p += c.p2pSeconds();
        }
        return combine(compute, allToAll, p2p, callSeconds(mesh));
    }

    /** Group time from its sums: the all-to-alls, then the ring overlapping its compute, plus the fixed cost. */
    static double combine(double compute, double allToAll, double p2p, double fixed) {
        return allToAll + Math.max(compute, p2p) + fixed;
    }

    /** Memory per rank of a group on {@code mesh} holding {@code lengths} at once. */
    public long groupMemoryBytes(Mesh mesh, long... lengths) {
        long sum = 0;
        for (long s : lengths) {
            sum = Math.addExact(sum, cost(s, mesh).memoryBytes());
        }
        return sum;
    }

    private long memoryBytes(long paddedLength, Mesh mesh) {
        int u = mesh.ulysses();
        long sLoc = paddedLength / mesh.size();
        long e = shape.dtype().byteSize();
        long h = shape.heads();
        long hkv = shape.kvHeads();
        long hkvX = UlyssesAllToAll.exchangedKvHeads(hkv, u);
        long d = shape.headDim();
        long qRow = h * d;
        long shards = 4 * sLoc * (qRow + hkv * d) * e;
        long exchanged = u > 1 ? 4 * sLoc * (qRow + hkvX * d) * e : 0;
        long ring = mesh.ring() > 1 ? 4 * sLoc * hkvX * d * e + 4 * sLoc * hkvX * d * 4L : 0;
        long f32 = sLoc * h * 4L + sLoc * qRow * 4L;
        return Math.addExact(Math.addExact(shards, exchanged), Math.addExact(ring, f32));
    }

    /** "UxR". */
    public static String label(Mesh mesh) {
        return mesh.ulysses() + "x" + mesh.ring();
    }
}
