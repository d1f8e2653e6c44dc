package org.usp4j.comm.nccl;

import java.util.List;

/**
 * Who is in one communicator: its name (unique within the job, the same on every member, e.g.
 * {@code world/s1c0}) and its members' world ranks in group-rank order. Used for store keys and messages.
 */
record GroupMembers(String name, List<Integer> worldRanks) {

    GroupMembers {
        worldRanks = List.copyOf(worldRanks);
    }

    int size() {
        return worldRanks.size();
    }

    int worldRank(int groupRank) {
        return worldRanks.get(groupRank);
    }

    /** "group world/s0c1 (world ranks [0, 2])". */
    String describe() {
        return "group " + name + " (world ranks " + worldRanks + ")";
    }
}
