/**
 * The CPU attention kernel: {@link org.usp4j.cpu.CpuAttentionKernel}, a flash-style (tiled, online
 * softmax) implementation of {@link org.usp4j.kernel.AttentionKernel} in plain Java with the Vector
 * API, and {@link org.usp4j.cpu.FmaPeak}, the machine's measured FMA throughput that benchmarks
 * report the kernel against.
 *
 * <p>Inside: one register-blocked micro-kernel ({@code TileGemm}) that every tile product goes
 * through, a vector exp2 ({@code VectorExp2}), row I/O with dtype conversion ({@code TensorRows}),
 * the forward and backward passes ({@code FlashForward}, {@code FlashBackward}) and the work-item
 * scheduler ({@code WorkItems}).
 */
package org.usp4j.cpu;
