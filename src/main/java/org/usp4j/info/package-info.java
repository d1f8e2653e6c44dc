/**
 * What usp4j finds on this machine (the {@code usp4j info} diagnosis): the JDK, each native library or
 * why it was not found, the CUDA devices, and which cuDNN SDPA and NCCL all-to-all paths the versions
 * found allow.
 */
package org.usp4j.info;
