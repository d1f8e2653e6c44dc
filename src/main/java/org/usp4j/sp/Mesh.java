package org.usp4j.sp;

/**
 * The USP mesh: P = U x R ranks, Ulysses degree U (all-to-all over heads, put on fast links) times ring
 * degree R (K/V blocks passed around a ring). Rank r has {@code ulyssesRank = r % U} and
 * {@code ringRank = r / U}: Ulysses groups are runs of U consecutive ranks, ring groups are the ranks
 * with equal Ulysses rank.
 */
public record Mesh(int ulysses, int ring) {

    public Mesh {
        if (ulysses < 1 || ring < 1) {
            throw new IllegalArgumentException("mesh degrees must be at least 1, got ulysses " + ulysses
                    + " x ring " + ring);
        }
        if ((long) ulysses * ring > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("mesh " + ulysses + " x " + ring + " is too large");
        }
    }

    /** P = U x R. */
    public int size() {
        return ulysses * ring;
    }

    public int ulyssesRank(int rank) {
        checkRank(rank);
        return rank % ulysses;
    }

    public int ringRank(int rank) {
        checkRank(rank);
        return rank / ulysses;
    }

    /** The rank with the given coordinates. */
    public int rank(int ulyssesRank, int ringRank) {
        if (ulyssesRank < 0 || ulyssesRank >= ulysses || ringRank < 0 || ringRank >= ring) {
            throw new IllegalArgumentException("coordinates (ulysses " + ulyssesRank + ", ring " + ringRank
                    + ") outside mesh " + this);
        }
        return ringRank * ulysses + ulyssesRank;
    }

    /** The U ranks of ring rank {@code ringRank}'s Ulysses group, in Ulysses-rank order. */
    public int[] ulyssesGroup(int ringRank) {
        int[] ranks = new int[ulysses];
        for (int u = 0; u < ulysses; u++) {
            ranks[u] = rank(u, ringRank);
        }
        return ranks;
    }

    /** The R ranks of the ring of Ulysses rank {@code ulyssesRank}, in ring order. */
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

    @Override
    public String toString() {
        return ulysses + "x" + ring + " (ulysses x ring)";
    }
}
