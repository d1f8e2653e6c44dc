/**
 * How ranks talk: the {@link org.usp4j.comm.Communicator} interface (all-to-all, all-gather,
 * reduce-scatter, grouped send/recv, split), transfers in flight, and per-kind byte accounting checked
 * against each strategy's cost model. Implementations: in-process ranks in {@code comm.local}, NCCL in
 * {@code comm.nccl}.
 */
package org.usp4j.comm;
