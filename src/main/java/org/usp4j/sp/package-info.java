/**
 * Sequence-parallel attention strategies: the {@link org.usp4j.api.Mesh} of U x R ranks, how the sequence is
 * dealt ({@link org.usp4j.sp.SequenceLayout}), USP ({@link org.usp4j.sp.UspAttention}: Ulysses around a
 * {@link org.usp4j.sp.RingAlgorithm} from the {@link org.usp4j.sp.RingAlgorithms} registry, such as
 * {@link org.usp4j.sp.RingAttention}, {@link org.usp4j.sp.AllGatherAttention},
 * {@link org.usp4j.sp.TokenRingAttention} and {@link org.usp4j.sp.LightSeqAttention}), each with its cost model
 * in {@link org.usp4j.sp.RankBytes}, and {@link org.usp4j.sp.UspPlan}, which checks a problem, makes every
 * rank's strategy and predicts its bytes. Strategies get their communicators and backend explicitly;
 * nothing here is global state.
 */
package org.usp4j.sp;
