/**
 * Attention blocks on cuDNN: the composite SDPA graphs (forward with softmax stats, backward) built through
 * the backend API, their finalized plans and the plan cache, behind the kernel interface.
 */
package org.usp4j.gpu.sdpa;
