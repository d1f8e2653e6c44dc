/**
 * The rendezvous store: a small TCP key-value server ({@link org.usp4j.dist.store.StoreServer}) and its
 * client ({@link org.usp4j.dist.store.StoreClient}), the role torchrun's TCPStore plays. Rank 0 hosts it;
 * ranks publish and wait for small values (the NCCL unique id), count arrivals and pass barriers.
 *
 * <p>Only clients that present the job's token ({@link org.usp4j.dist.store.Tokens}) are served; every
 * message is length-prefixed and bounded by {@link org.usp4j.dist.store.StoreLimits}; every read has a
 * timeout, so a dead or stalled peer is an exception naming the store, never a hang. Java only, no
 * dependencies; the wire format is private to this package.
 */
package org.usp4j.dist.store;
