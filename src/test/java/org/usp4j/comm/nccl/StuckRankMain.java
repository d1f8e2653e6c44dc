package org.usp4j.comm.nccl;

import java.time.Duration;
import java.util.List;

/**
 * A process whose main thread is stuck when its watchdog fails it: {@link NcclProcessRank#exitWhenStuck}
 * with the grace in milliseconds from args[0] is told of a failure, and the main thread then sleeps far
 * longer. Exits 0 only if nothing halted it.
 */
public final class StuckRankMain {

    private StuckRankMain() {
    }

    public static void main(String[] args) throws InterruptedException {
        NcclProcessRank.exitWhenStuck(System.err, Duration.ofMillis(Long.parseLong(args[0])))
                .accept(new RankFailureException("rank 1 of 2: NCCL allToAll on group world (world ranks [0, 1]) did "
                        + "not complete within 1000 ms;\n  rank(s) [0] sent no heartbeat", List.of(0), null));
        Thread.sleep(60_000);
        System.exit(0);
    }
}
