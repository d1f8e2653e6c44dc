package org.usp4j.api;

/** Where a rank computes, and so where its tensors live. */
public enum BackendKind {
    /** The Java attention kernel on host memory; runs everywhere. */
    CPU,
    /** cuDNN and CUDA kernels on device memory of one CUDA device. */
    CUDA
}
