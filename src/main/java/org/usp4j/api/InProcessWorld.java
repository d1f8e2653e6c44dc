package org.usp4j.api;

import java.util.List;

/**
 * P ranks in this process, one thread each, exchanging data through shared memory (CPU ranks) or device
 * copies (CUDA ranks on one GPU): the way to run usp4j without a cluster, and the test oracle of the
 * multi-process path. Made by {@link Usp4j#cpuWorld} or {@link Usp4j#cudaWorld}.
 * {@snippet :
 * try (InProcessWorld world = Usp4j.cpuWorld(4)) {
 *     world.run(rank -> {
 *         try (AttentionLayer attention = rank.newAttention(new Mesh(2, 2), AttentionOptions.defaults())) {
 *             attention.forward(q[rank.rank()], k[rank.rank()], v[rank.rank()], out[rank.rank()]);
 *         }
 *         return null;
 *     });
 * }
 * }
 *
 * <p>Ownership: the world owns its threads, communicators and backends, and every layer its ranks made
 * that is still open; {@link #close()} frees all of it, once. Thread-safety: {@link #run} may be called
 * from any thread, one call at a time (concurrent calls wait for each other). After a rank failed, the
 * world is aborted and every later {@link #run} throws {@link IllegalStateException}: make a new one.
 * Implemented by usp4j only.
 */
public interface InProcessWorld extends AutoCloseable {

    /**
     * The number of ranks.
     *
     * @return P
     */
    int size();

    /**
     * Where the ranks compute.
     *
     * @return the backend of every rank
     */
    BackendKind backend();

    /**
     * Runs {@code function} on every rank at once, one thread per rank, and returns when all have
     * finished. Layers made in one run may be used in later runs, by the same rank. When a rank throws,
     * the world is aborted (the other ranks' communication fails at once) and the first failure is
     * thrown here after every rank has stopped: an unchecked exception or error unchanged (so an
     * {@link IllegalArgumentException} about a bad tensor stays one), a communication failure as a
     * {@link CommunicationException}, a checked exception wrapped in a
     * {@link java.util.concurrent.CompletionException}.
     *
     * @param function what each rank does
     * @param <T>      what each rank returns
     * @return the ranks' results, in rank order
     * @throws IllegalStateException when the world is closed or aborted
     */
    <T> List<T> run(RankFunction<T> function);

    /** Closes every layer still open, the communicators, the backends and the threads. Idempotent. */
    @Override
    void close();
}
