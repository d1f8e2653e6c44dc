/**
 * Sequence-parallel attention: the {@link org.usp4j.sp.Mesh} of U x R ranks, how the sequence is dealt
 * ({@link org.usp4j.sp.SequenceLayout}), the per-rank strategies ({@link org.usp4j.sp.RingAttention},
 * {@link org.usp4j.sp.UspAttention} around {@link org.usp4j.sp.UlyssesAllToAll}) behind the
 * {@link org.usp4j.sp.SequenceParallelAttention} interface, the byte {@link org.usp4j.sp.CostModel}, and
 * {@link org.usp4j.sp.InProcessAttention}, which runs a whole distributed call on global host tensors.
 * Strategies get their communicators and backend explicitly; nothing here is global state.
 */
package org.usp4j.sp;
