/**
 * Tensors as strided views of memory usp4j does not own: host memory (a {@link java.lang.foreign.MemorySegment})
 * or device memory (a {@link org.usp4j.tensor.DevicePointer}, an address that is never dereferenced on the
 * host), in {@link org.usp4j.tensor.DType} F32, BF16 or F16, and host-side helpers for tests and examples.
 */
package org.usp4j.tensor;
