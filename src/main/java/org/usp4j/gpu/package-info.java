/**
 * The CUDA backend of one rank: its stream, stream-ordered scratch memory, the element-wise PTX kernels,
 * and the device transport that lets in-process ranks on one GPU exchange buffers with device copies
 * ordered by events.
 */
package org.usp4j.gpu;
