/**
 * The CUDA backend of one rank: its stream, stream-ordered scratch memory, the element-wise PTX kernels,
 * the device transport that lets in-process ranks on one GPU exchange buffers with device copies
 * ordered by events, and the cuDNN graph machinery its {@link org.usp4j.gpu.DeviceCalls} issue (a
 * graph's description, its build through the backend API and its finalized plan). The attention kernel
 * is handed in by an {@link org.usp4j.gpu.CudaBackend.AttentionFactory}; this package never names
 * {@code gpu.sdpa}.
 */
package org.usp4j.gpu;
