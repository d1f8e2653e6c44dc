/**
 * Attention blocks on cuDNN: the composite SDPA graphs (forward with softmax stats, backward), the plan
 * cache behind the kernel interface, and {@link org.usp4j.gpu.sdpa.CudnnBackends}, which makes CUDA
 * backends with this kernel.
 */
package org.usp4j.gpu.sdpa;
