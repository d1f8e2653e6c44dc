package org.usp4j.api.internal;

import java.util.Arrays;
import java.util.Objects;
import org.usp4j.api.AttentionLayer;
import org.usp4j.api.AttentionOptions;
import org.usp4j.api.Mesh;
import org.usp4j.api.PackedSequences;
import org.usp4j.backend.Backend;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.sp.Forward;
import org.usp4j.sp.Gradients;
import org.usp4j.sp.MeshGroups;
import org.usp4j.sp.UspAttention;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * The {@link AttentionLayer} of one rank: the {@link UspPlan}'s strategy (the one every command's engine
 * runs) over the rank's mesh groups, with the caller's tensors checked first and the results copied
 * (and only they) into the caller's buffers. The caller's tensors are already this rank's shards, so
 * there is nothing to deal or gather. The plan may be any USP plan: a {@link LinearLayer} runs LASP-2's
 * through one of these.
 */
final class UspLayer implements AttentionLayer {

    private final Mesh mesh;
    private final AttentionOptions options;
    private final RankSite site;
    private final MeshGroups groups;
    private final UspPlan plan;
    private final UspAttention usp;
    private Forward saved;
    private AttentionShapes savedShapes;
    private DType savedDtype;
    private Tensor[] savedInputs; // the caller's q, k, v, which the saved state may reference
    private boolean closed;

    UspLayer(Mesh mesh, AttentionOptions options, UspPlan plan, RankSite site, MeshGroups groups) {
        this.mesh = mesh;
        this.options = options;
        this.site = site;
        this.groups = groups;
        this.plan = plan;
        this.usp = plan.create(groups, site.computeBackend());
    }

    @Override
    public Mesh mesh() {
        return mesh;
    }

    @Override
    public AttentionOptions options() {
        return options;
    }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, Tensor out) {
        forward(q, k, v, out, (SequenceBoundaries) null);
    }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, Tensor out, PackedSequences sequences) {
        forward(q, k, v, out, Conversions.sequences(sequences));
    }

    private void forward(Tensor q, Tensor k, Tensor v, Tensor out, SequenceBoundaries sequences) {
        requireOpen();
        site.enter();
        CallerTensors.Placement where = site.placement();
        CallerTensors.require("q", q, where);
        CallerTensors.require("k", k, where);
        CallerTensors.require("v", v, where);
        CallerTensors.require("out", out, where);
        CallerTensors.requireWritable("out", out);
        AttentionShapes shapes = AttentionShapes.of(q, k, v);
        if (q.dtype() != k.dtype() || q.dtype() != v.dtype()) {
            throw new IllegalArgumentException("q, k and v must have one dtype, got " + q.dtype() + ", " + k.dtype()
                    + ", " + v.dtype());
        }
        requireNonEmpty(q);
        shapes.requireQueryShaped("out", out);
        requireDtype("out", out, q.dtype());
        CallerTensors.requireDistinct("out", out, "q", q);
        CallerTensors.requireDistinct("out", out, "k", k);
        CallerTensors.requireDistinct("out", out, "v", v);
        if (sequences != null) {
            AttentionShapes global = new AttentionShapes(shapes.batch(), shapes.seqQ() * mesh.size(),
                    shapes.seqKv() * mesh.size(), shapes.heads(), shapes.kvHeads(), shapes.headDim());
            plan.validate(global, sequences);
        }
        usp.validate(shapes, q.dtype(), sequences);
        discardSavedState();
        Backend backend = site.computeBackend();
        Forward f = null;
        try {
            f = usp.forward(q, k, v, sequences);
            backend.copy(f.out(), out);
            if (site.synchronousCalls()) {
                backend.synchronize();
            }
        } catch (RuntimeException e) {
            closeQuietly(f, e);
            throw Failures.translate(e);
        } catch (Error e) {
            closeQuietly(f, e);
            throw e;
        }
        saved = f;
        savedShapes = shapes;
        savedDtype = q.dtype();
        savedInputs = new Tensor[] {q, k, v};
    }

    @Override
    public void backward(Tensor dout, Tensor dq, Tensor dk, Tensor dv) {
        requireOpen();
        site.enter();
        if (saved == null) {
            throw new IllegalStateException("backward needs a forward first (each forward is consumed by one backward)");
        }
        String[] inputNames = {"q", "k", "v"};
        for (int i = 0; i < 3; i++) {
            Tensor input = savedInputs[i];
            if (input.isHost() && !input.segment().scope().isAlive()) {
                throw new IllegalArgumentException("the forward's " + inputNames[i] + " " + input.describe()
                        + " was freed before the backward; keep q, k, v alive until the backward");
            }
        }
        CallerTensors.Placement where = site.placement();
        CallerTensors.require("dout", dout, where);
        CallerTensors.require("dq", dq, where);
        CallerTensors.require("dk", dk, where);
        CallerTensors.require("dv", dv, where);
        savedShapes.requireQueryShaped("dout", dout);
        savedShapes.requireQueryShaped("dq", dq);
        savedShapes.requireKvShaped("dk", dk);
        savedShapes.requireKvShaped("dv", dv);
        requireGradientLayout("dout", dout);
        requireGradientLayout("dq", dq);
        requireGradientLayout("dk", dk);
        requireGradientLayout("dv", dv);
        CallerTensors.requireWritable("dq", dq);
        CallerTensors.requireWritable("dk", dk);
        CallerTensors.requireWritable("dv", dv);
        CallerTensors.requireDistinct("dq", dq, "dk", dk);
        CallerTensors.requireDistinct("dq", dq, "dv", dv);
        CallerTensors.requireDistinct("dk", dk, "dv", dv);
        Backend backend = site.computeBackend();
        try {
            Gradients g = usp.backward(saved, dout);
            backend.copy(g.dq(), dq);
            backend.copy(g.dk(), dk);
            backend.copy(g.dv(), dv);
            if (site.synchronousCalls()) {
                backend.synchronize();
            }
        } catch (RuntimeException e) {
            throw Failures.translate(e);
        } finally {
            // The gradients live in the forward's scope: freed with it, after the copies are ordered.
            discardSavedState();
        }
    }

    @Override
    public boolean hasSavedState() {
        return saved != null;
    }

    @Override
    public void discardSavedState() {
        requireOpen();
        if (saved != null) {
            saved.close();
            saved = null;
            savedShapes = null;
            savedDtype = null;
            savedInputs = null;
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        if (saved != null) {
            saved.close();
            saved = null;
            savedInputs = null;
        }
        closed = true;
        groups.close();
        site.closed(this);
    }

    boolean isClosed() {
        return closed;
    }

    @Override
    public String toString() {
        return "AttentionLayer[mesh " + mesh + ", " + options + (closed ? ", closed]" : "]");
    }

    private static void closeQuietly(Forward f, Throwable failure) {
        if (f != null) {
            try {
                f.close();
            } catch (RuntimeException e) {
                failure.addSuppressed(e);
            }
        }
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("this attention layer is closed");
        }
    }

    private static void requireNonEmpty(Tensor q) {
        for (long size : q.shape()) {
            if (size < 1) {
                throw new IllegalArgumentException("q has an empty dimension: " + Arrays.toString(q.shape()));
            }
        }
    }

    private void requireGradientLayout(String name, Tensor t) {
        requireDtype(name, t, savedDtype);
        if (t.size(3) > 1 && t.stride(3) != 1) {
            throw new IllegalArgumentException(name + " must have a contiguous head_dim (stride 1), got strides "
                    + Arrays.toString(t.strides()));
        }
    }

    private static void requireDtype(String name, Tensor t, DType expected) {
        if (t.dtype() != expected) {
            throw new IllegalArgumentException(name + " must be " + expected + " like q, got " + t.dtype());
        }
    }

    static UspLayer create(Mesh mesh, AttentionOptions options, RankSite site,
                           org.usp4j.comm.Communicator world) {
        Objects.requireNonNull(mesh, "mesh");
        Objects.requireNonNull(options, "options");
        return create(mesh, options, Conversions.plan(mesh, options), site, world);
    }

    /** A layer running {@code plan}; {@code options} are what {@link #options()} reports. */
    static UspLayer create(Mesh mesh, AttentionOptions options, UspPlan plan, RankSite site,
                           org.usp4j.comm.Communicator world) {
        if (!plan.ringAlgorithm().layouts().contains(plan.options().layout())) {
            throw new IllegalArgumentException("ring algorithm " + plan.ringAlgorithm().name() + " does not support"
                    + " the " + plan.options().layout().label() + " layout (it supports "
                    + plan.ringAlgorithm().layouts() + ")");
        }
        if (mesh.size() != world.size()) {
            throw new IllegalArgumentException("mesh " + mesh + " has " + mesh.size() + " ranks, but the world has "
                    + world.size());
        }
        MeshGroups groups;
        try {
            groups = MeshGroups.split(mesh, world);
        } catch (RuntimeException e) {
            throw Failures.translate(e);
        }
        return new UspLayer(mesh, options, plan, site, groups);
    }
}
