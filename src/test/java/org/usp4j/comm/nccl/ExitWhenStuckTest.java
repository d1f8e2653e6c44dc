package org.usp4j.comm.nccl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.launch.JavaProcesses;

/**
 * A rank failed by its watchdog while its main thread is stuck (in a native call, say) does not hang:
 * {@link NcclProcessRank#exitWhenStuck} prints the failure as one error line and halts with status 1
 * after the grace period. Run in a child JVM, since it ends its process.
 */
@Timeout(60)
class ExitWhenStuckTest {

    @Test
    void aStuckRankPrintsOneErrorLineAndHaltsAfterTheGrace() throws IOException, InterruptedException {
        Process p = new ProcessBuilder(JavaProcesses.command(StuckRankMain.class, "300")).start();
        long t0 = System.nanoTime();
        assertTrue(p.waitFor(30, TimeUnit.SECONDS), "the stuck process was not halted");
        long millis = TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - t0);
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8).strip();
        assertEquals(1, p.exitValue(), err);
        assertEquals("error: rank 1 of 2: NCCL allToAll on group world (world ranks [0, 1]) did not complete within "
                + "1000 ms; rank(s) [0] sent no heartbeat (the process did not end within 300 ms of the failure; "
                + "halting)", err);
        assertTrue(millis >= 300, millis + " ms");
    }
}
