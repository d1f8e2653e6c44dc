package org.usp4j.api;

/**
 * What one rank of an {@link InProcessWorld} does in one {@link InProcessWorld#run}: the same code runs
 * on every rank, each with its own {@link RankContext}.
 *
 * @param <T> what each rank returns
 */
@FunctionalInterface
public interface RankFunction<T> {

    /**
     * Runs this rank's part.
     *
     * @param rank the rank's context, valid during this call (layers it makes outlive it)
     * @return this rank's result (may be null)
     * @throws Exception anything; the world then fails, see {@link InProcessWorld#run}
     */
    T apply(RankContext rank) throws Exception;
}
