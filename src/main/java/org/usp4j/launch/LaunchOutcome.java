package org.usp4j.launch;

import java.util.List;

/**
 * How a launch ended: every started rank's exit, in local-rank order, and why it failed.
 *
 * @param ranks           the ranks that were started
 * @param failure         null when every rank exited with 0; else one line on what went wrong first
 *                        ("rank 1 exited with code 3; stopped ranks [0, 2]"), the launcher's error message
 * @param firstFailedRank the global rank whose failure made the launcher stop the others; -1 when none
 *                        did (success, a command that could not start, an interrupted launcher)
 */
public record LaunchOutcome(List<RankExit> ranks, String failure, int firstFailedRank) {

    public LaunchOutcome {
        ranks = List.copyOf(ranks);
    }

    public boolean succeeded() {
        return failure == null;
    }
}
