/**
 * The rendezvous store: a small TCP key-value server ({@link org.usp4j.launch.store.StoreServer}) and its
 * client ({@link org.usp4j.launch.store.StoreClient}), the role torchrun's TCPStore plays. Rank 0 hosts it;
 * ranks publish and wait for small values (the NCCL unique id), count arrivals and pass barriers.
 *
 * <p>Only clients that prove they hold the job's token ({@link org.usp4j.launch.store.Tokens}) are served,
 * and clients only talk to a server that proved the same: an HMAC-SHA256 challenge-response over fresh
 * nonces from both sides, so the token never travels. Every message is length-prefixed and bounded by
 * {@link org.usp4j.launch.store.StoreLimits}; every read has a timeout and every frame a total deadline, so
 * a dead, stalled or trickling peer is an exception naming the store, never a hang; connections still in
 * their handshake cannot crowd out authenticated ones. Java only, no dependencies; the wire format is
 * private to this package.
 */
package org.usp4j.launch.store;
