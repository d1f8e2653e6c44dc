/**
 * Measuring usp4j: FLOPs over unmasked pairs ({@link org.usp4j.bench.AttentionFlops}), the problem shapes
 * the benchmarks share, and the GPU comparison suite ({@link org.usp4j.bench.GpuSuite}). Timed calls run
 * through {@link org.usp4j.engine.AttentionEngine#measure}. The {@code usp4j bench} and {@code demo}
 * commands and the JMH suite in {@code jmh/} build on it.
 */
package org.usp4j.bench;
