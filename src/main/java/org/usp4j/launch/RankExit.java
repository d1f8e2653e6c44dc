package org.usp4j.launch;

/**
 * How one launched rank ended.
 *
 * @param rank              global rank
 * @param localRank         rank on this node
 * @param pid               its process id
 * @param exitCode          its exit status (128 + n when killed by signal n)
 * @param stoppedByLauncher true when the launcher stopped it because another rank failed or the launcher
 *                          was interrupted
 */
public record RankExit(int rank, int localRank, long pid, int exitCode, boolean stoppedByLauncher) {

    public boolean succeeded() {
        return exitCode == 0;
    }

    /** "exited with code 3", "was killed by signal 9 (exit code 137)". */
    public String describeExit() {
        if (exitCode > 128 && exitCode <= 128 + 64) {
            return "was killed by signal " + (exitCode - 128) + " (exit code " + exitCode + ")";
        }
        return "exited with code " + exitCode;
    }
}
