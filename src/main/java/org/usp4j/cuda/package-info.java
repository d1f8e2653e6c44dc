/**
 * Typed wrappers over the CUDA runtime bindings: {@link org.usp4j.cuda.Cuda} (devices, versions,
 * errors), owners of device memory ({@link org.usp4j.cuda.DeviceBuffer}, seen only as a
 * {@link org.usp4j.tensor.DevicePointer}), pinned host memory, streams and events, copies
 * ({@link org.usp4j.cuda.CudaMemory}), and our own PTX kernels ({@link org.usp4j.cuda.PtxModule}).
 * Failures throw {@link org.usp4j.cuda.CudaException}.
 */
package org.usp4j.cuda;
