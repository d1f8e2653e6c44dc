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

    /**
     * The rank with the given coordinates.
     *
     * @param ulyssesRank the position inside the Ulysses group, in [0, U)
     * @param ringRank    the position inside the ring, in [0, R)
     * @return {@code ringRank x U + ulyssesRank}
     * @throws IllegalArgumentException when a coordinate is outside the mesh
     */
    public int rank(int ulyssesRank, int ringRank) {
        if (ulyssesRank < 0 || ulyssesRank >= ulysses || ringRank < 0 || ringRank >= ring) {
            throw new IllegalArgumentException("coordinates (ulysses " + ulyssesRank + ", ring " + ringRank
                    + ") outside mesh " + this);
        }
        return ringRank * ulysses + ulyssesRank;
    }

    /**
     * The U ranks of one Ulysses group, in Ulysses-rank order.
     *
     * @param ringRank the ring rank the group's ranks share, in [0, R)
     * @return a new array of the group's ranks
     * @throws IllegalArgumentException when {@code ringRank} is outside the mesh
     */
    public int[] ulyssesGroup(int ringRank) {
        int[] ranks = new int[ulysses];
        for (int u = 0; u < ulysses; u++) {
            ranks[u] = rank(u, ringRank);
        }
        return ranks;
    }

    /**
     * The R ranks of one ring, in ring order.
     *
     * @param ulyssesRank the Ulysses rank the ring's ranks share, in [0, U)
     * @return a new array of the ring's ranks
     * @throws IllegalArgumentException when {@code ulyssesRank} is outside the mesh
     */
    public int[] ringGroup(int ulyssesRank) {
        int[] ranks = new int[ring];
        for (int g = 0; g < ring; g++) {
            ranks[g] = rank(ulyssesRank, g);
        }
        return ranks;
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
