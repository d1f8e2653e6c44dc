package org.usp4j.engine;

import java.util.List;
import java.util.function.BiConsumer;
import java.util.function.IntFunction;
import org.usp4j.backend.Backend;
import org.usp4j.comm.Communicator;
import org.usp4j.tensor.Tensor;

/**
 * The ranks of a world as this process sees them: all of them for in-process ranks
 * ({@link InProcessRanks}, CPU or device ranks as threads), one for a launched process on NCCL
 * ({@link ProcessRanks}). The {@link AttentionEngine} runs on any of them the same way.
 */
public interface Ranks extends AutoCloseable {

    /** Work for one rank, run on that rank's thread. */
    interface RankTask<T> {
        T run(int rank);
    }

    /** How a gathered piece lands on the root: called with the rank, its piece, and a copy that can read it. */
    interface Placer {
        void place(int rank, Tensor piece, BiConsumer<Tensor, Tensor> copy);
    }

    /** P, the world size. */
    int size();

    /** The ranks this process runs, ascending. */
    int[] hosted();

    /** Whether this process holds rank 0, where results are gathered. */
    default boolean hostsRoot() {
        return hosted()[0] == 0;
    }

    Backend backend(int rank);

    /** The world communicator of a hosted rank. */
    Communicator world(int rank);

    /** The device a hosted rank computes on, or -1 on the host. */
    int device(int rank);

    /** Runs {@code task} on every hosted rank at once (collective); the results in {@link #hosted()} order. */
    <T> List<T> run(RankTask<T> task);

    /**
     * Collective: every rank's {@code piece} reaches the root, where {@code place} is called for every rank
     * in order (on the caller's thread). Elsewhere {@code place} is not called.
     */
    void gather(IntFunction<Tensor> piece, Placer place);

    /** Collective: the root gets every rank's small payload in rank order, other processes their own. */
    List<byte[]> gatherBytes(String key, IntFunction<byte[]> payload);

    /** Throws if a hosted rank failed while its device work was waited on; called after each synchronize. */
    default void checkHealthy(int rank) {
    }

    /** Frees what these ranks own (in-process: the world and the backends; a launched rank stays its owner's). */
    @Override
    void close();
}
