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

    /** One rank's instance over its ring group. */
    SequenceParallelAttention create(Communicator ring, Backend backend, AttentionOptions options);

    /** Bytes one ring rank sends in a forward, for its block shapes, dtype and ring size R. */
    RankBytes forwardBytes(AttentionShapes block, DType dtype, int ringSize);

    /** Bytes one ring rank sends in a backward. */
    RankBytes backwardBytes(AttentionShapes block, DType dtype, int ringSize);
}
