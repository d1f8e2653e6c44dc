package org.usp4j.api;

/**
 * How a softmax {@link AttentionLayer} attends across the R ranks of a ring (the inner part of USP, with
 * the Ulysses all-to-all around it), chosen with {@link AttentionOptions#withRingAlgorithm}. Each
 * constant is the algorithm that the command line's {@code --ring-algo} names by the constant's name in
 * lower case. Every algorithm computes the same attention; they differ in what travels and how much
 * memory it takes.
 *
 * <p>More algorithms will be added as constants in later versions: a {@code switch} over this type
 * needs a {@code default} branch. A layer refuses, when it is made, a layout its algorithm does not
 * support.
 */
public enum RingAlgorithm {
    /**
     * Ring attention: each rank keeps its queries while the K/V blocks travel around the ring, one step
     * per rank, overlapping the transfers with the computation. The default.
     */
    RING,
    /**
     * All-gather context parallelism (Llama 3 style): every rank gathers the whole K/V once per layer and
     * attends locally; the backward reduce-scatters the K/V gradients. Simpler and numerically steadier,
     * at R times the K/V memory of the ring.
     */
    ALLGATHER,
    /**
     * TokenRing: K/V stay on their owner while the query block travels one way around the ring and the
     * partial results come straight back the other way, so both directions of every link carry data.
     */
    TOKENRING,
    /**
     * LightSeq's balanced schedule for causal attention on the {@link SequenceLayout#CONTIGUOUS} layout
     * only: the ranks that the plain ring leaves idle compute blocks for the busy ones, and the ring stops
     * after R/2 steps. Non-causal attention runs the plain ring.
     */
    LIGHTSEQ
}
