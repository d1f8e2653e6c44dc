package org.usp4j.api.internal;

import java.util.Objects;
import org.usp4j.api.AttentionOptions;
import org.usp4j.api.LinearAttentionLayer;
import org.usp4j.api.LinearAttentionOptions;
import org.usp4j.api.Mesh;
import org.usp4j.comm.Communicator;
import org.usp4j.tensor.Tensor;

/**
 * The {@link LinearAttentionLayer} of one rank: a {@link UspLayer} running LASP-2's USP plan, so the
 * caller's tensors are checked, and the saved state kept and freed, exactly as for a softmax layer. The
 * rank tracks (and closes) the {@link UspLayer}; this is its public face.
 */
final class LinearLayer implements LinearAttentionLayer {

    private final LinearAttentionOptions options;
    private final UspLayer usp;

    private LinearLayer(LinearAttentionOptions options, UspLayer usp) {
        this.options = options;
        this.usp = usp;
    }

    /**
     * Refuses a backend without a linear attention kernel (CUDA, for now) before the world is split, so
     * every rank fails alike without talking.
     */
    static LinearLayer create(Mesh mesh, LinearAttentionOptions options, RankSite site, Communicator world) {
        Objects.requireNonNull(mesh, "mesh");
        Objects.requireNonNull(options, "options");
        try {
            site.computeBackend().linearKernel();
        } catch (UnsupportedOperationException e) {
            throw new UnsupportedOperationException("linear attention layers run on CPU ranks only for now: this"
                    + " rank computes on " + site.computeBackend().name() + ", which has no linear attention kernel", e);
        }
        // What the softmax layer underneath reports: the causality and scale; the layout is contiguous.
        AttentionOptions view = AttentionOptions.defaults().withCausal(options.causal()).withScale(options.scale());
        return new LinearLayer(options, UspLayer.create(mesh, view, Conversions.plan(mesh, options), site, world));
    }

    /** The layer the rank tracks and closes. */
    UspLayer usp() {
        return usp;
    }

    @Override
    public Mesh mesh() {
        return usp.mesh();
    }

    @Override
    public LinearAttentionOptions options() {
        return options;
    }

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, Tensor out) {
        usp.forward(q, k, v, out);
    }

    @Override
    public void backward(Tensor dout, Tensor dq, Tensor dk, Tensor dv) {
        usp.backward(dout, dq, dk, dv);
    }

    @Override
    public boolean hasSavedState() {
        return usp.hasSavedState();
    }

    @Override
    public void discardSavedState() {
        usp.discardSavedState();
    }

    @Override
    public void close() {
        usp.close();
    }

    @Override
    public String toString() {
        return "LinearAttentionLayer[mesh " + usp.mesh() + ", " + options + (usp.isClosed() ? ", closed]" : "]");
    }
}
