package org.usp4j.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;

import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.launch.store.Tokens;
import org.usp4j.nccl.Nccl;
import org.usp4j.nccl.NcclUniqueId;

/**
 * The real NCCL library's unique id (128 bytes, made without a GPU) travels from rank 0 to every rank
 * through the rendezvous, unchanged: the step that precedes ncclCommInitRank on every rank.
 */
@Timeout(60)
class NcclUniqueIdRendezvousTest {

    @Test
    void theUniqueIdReachesEveryRankUnchanged() throws Exception {
        int world = 3;
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String token = Tokens.generate();
        NcclUniqueId[] made = new NcclUniqueId[1];
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<NcclUniqueId>> received = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                LaunchEnvironment env = new LaunchEnvironment(r, world, r, world, "127.0.0.1", port, token,
                        Duration.ofSeconds(30), LaunchSource.USP4J);
                received.add(pool.submit(() -> {
                    try (Rendezvous rdzv = Rendezvous.join(env)) {
                        return NcclUniqueId.fromBytes(rdzv.broadcast("nccl/unique-id", () -> {
                            made[0] = Nccl.uniqueId();
                            return made[0].bytes();
                        }));
                    }
                }));
            }
            List<NcclUniqueId> ids = new ArrayList<>();
            for (Future<NcclUniqueId> f : received) {
                ids.add(f.get());
            }
            assertEquals(NcclUniqueId.BYTES, made[0].bytes().length);
            assertNotEquals(NcclUniqueId.fromBytes(new byte[NcclUniqueId.BYTES]), made[0], "NCCL filled the id");
            for (NcclUniqueId id : ids) {
                assertEquals(made[0], id);
            }
        }
    }
}
