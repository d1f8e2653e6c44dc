package org.usp4j.api.internal;

import org.usp4j.backend.Backend;

/**
 * What a layer needs from the rank that made it: the rank's backend, where tensors must live, a check
 * (and set-up, such as selecting the CUDA device) before every call, and whether calls must wait for
 * the device before returning.
 */
interface RankSite {

    Backend computeBackend();

    CallerTensors.Placement placement();

    /** Throws {@link IllegalStateException} when the calling thread may not act for this rank now; prepares it otherwise. */
    void enter();

    /** True where results must be complete when a call returns (in-process CUDA ranks); false where stream order suffices. */
    boolean synchronousCalls();

    /** Forgets a layer that was closed. */
    void closed(UspLayer layer);
}
