/**
 * Finding and loading the native libraries (CUDA runtime 13, NCCL 2, cuDNN 9): explicit settings,
 * then the CUDA toolkit, LD_LIBRARY_PATH, the system loader, Python {@code nvidia-*} wheels and
 * bytedeco's redist jars; the version check; and the base class of native resource owners.
 */
package org.usp4j.nativelib;
