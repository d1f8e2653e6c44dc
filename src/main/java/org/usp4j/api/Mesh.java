package org.usp4j.api;

/**
 * How the P ranks of a world split one attention call: P = U x R, with Ulysses degree U (an all-to-all
 * over heads inside groups of U consecutive ranks; put them on fast links, e.g. one node) times ring
 * degree R (K/V blocks passed around rings of R ranks). Rank r has Ulysses rank {@code r % U} and ring
 * rank {@code r / U}. U = 1 is plain Ring attention, R = 1 plain Ulysses.
 *
 * <p>A plain value, immutable and thread-safe.
 *
 * @param ulysses U, the Ulysses (all-to-all) degree; at least 1, and it must divide the number of query
 *                heads
 * @param ring    R, the ring degree; at least 1
 */
public record Mesh(int ulysses, int ring) {

    /**
     * Checks the degrees.
     *
     * @throws IllegalArgumentException when a degree is below 1 or U x R overflows an int
     */
    public Mesh {
        if (ulysses < 1 || ring < 1) {
            throw new IllegalArgumentException("mesh degrees must be at least 1, got ulysses " + ulysses
                    + " x ring " + ring);
        }
        if ((long) ulysses * ring > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("mesh " + ulysses + " x " + ring + " is too large");
        }
    }

    /**
     * A mesh of pure Ulysses parallelism over {@code ranks} ranks (U = ranks, R = 1).
     *
     * @param ranks the number of ranks
     * @return the mesh {@code ranks x 1}
     */
    public static Mesh ulyssesOnly(int ranks) {
        return new Mesh(ranks, 1);
    }

    /**
     * A mesh of pure Ring attention over {@code ranks} ranks (U = 1, R = ranks).
     *
     * @param ranks the number of ranks
     * @return the mesh {@code 1 x ranks}
     */
    public static Mesh ringOnly(int ranks) {
        return new Mesh(1, ranks);
    }

    /**
     * The number of ranks.
     *
     * @return P = U x R
     */
    public int size() {
        return ulysses * ring;
    }

    /**
     * A rank's position inside its Ulysses group.
     *
     * @param rank a rank in [0, P)
     * @return {@code rank % U}
     * @throws IllegalArgumentException when {@code rank} is outside the mesh
     */
    public int ulyssesRank(int rank) {
        checkRank(rank);
        return rank % ulysses;
    }

    /**
     * A rank's position inside its ring.
     *
     * @param rank a rank in [0, P)
     * @return {@code rank / U}
     * @throws IllegalArgumentException when {@code rank} is outside the mesh
     */
    public int ringRank(int rank) {
        checkRank(rank);
        return rank / ulysses;
    }

    private void checkRank(int rank) {
        if (rank < 0 || rank >= size()) {
            throw new IllegalArgumentException("rank " + rank + " outside mesh " + this + " of " + size() + " ranks");
        }
    }

    /**
     * A short form such as {@code 2x2 (ulysses x ring)}.
     *
     * @return the degrees as text
     */
    @Override
    public String toString() {
        return ulysses + "x" + ring + " (ulysses x ring)";
    }
}
