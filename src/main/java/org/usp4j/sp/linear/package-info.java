/**
 * Sequence-parallel linear attention: {@link org.usp4j.sp.linear.Lasp2Attention} (LASP-2, Sun et al.:
 * one all-gather of d x d memory states per pass, whatever the sequence length) over a ring group, with
 * Ulysses around it as for softmax attention, its options and its byte cost model.
 */
package org.usp4j.sp.linear;
