/**
 * The one path from global tensors to distributed attention and back: {@link org.usp4j.engine.AttentionEngine}
 * deals global tensors to ranks by a layout, runs a {@link org.usp4j.sp.UspPlan}'s strategy on every rank of a
 * {@link org.usp4j.engine.Ranks} (in-process CPU or device ranks, or one launched NCCL process), measures each
 * rank's time and bytes, and gathers the results on the root. Every command and benchmark uses it.
 */
package org.usp4j.engine;
