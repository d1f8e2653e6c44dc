/**
 * Typed wrappers over the cuDNN bindings: {@link org.usp4j.cudnn.Cudnn} (version, errors),
 * {@link org.usp4j.cudnn.CudnnHandle} (per device and thread; execute), and
 * {@link org.usp4j.cudnn.BackendDescriptor}, a small builder over the backend (graph) API, with
 * enums for descriptor types, attribute names and values. Failures throw
 * {@link org.usp4j.cudnn.CudnnException}.
 */
package org.usp4j.cudnn;
