/**
 * Typed wrappers over the NCCL bindings: {@link org.usp4j.nccl.Nccl} (version, errors, unique ids,
 * groups), {@link org.usp4j.nccl.NcclCommunicator} (init, split, abort, async errors, collectives,
 * send/recv), {@link org.usp4j.nccl.NcclConfig} ({@code ncclConfig_t}). Failures throw
 * {@link org.usp4j.nccl.NcclException}.
 */
package org.usp4j.nccl;
