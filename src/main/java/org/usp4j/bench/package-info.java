/**
 * Measuring usp4j: FLOPs over unmasked pairs ({@link org.usp4j.bench.AttentionFlops}), a USP workload on
 * in-process ranks whose calls are timed without the dealing and gathering
 * ({@link org.usp4j.bench.UspWorkload}), and the GPU comparison suite ({@link org.usp4j.bench.GpuSuite}).
 * The {@code usp4j bench} and {@code demo} commands and the JMH suite in {@code jmh/} build on it.
 */
package org.usp4j.bench;
