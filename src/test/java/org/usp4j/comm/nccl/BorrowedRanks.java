package org.usp4j.comm.nccl;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.usp4j.nccl.NcclUniqueId;

/**
 * Runs one body per rank on threads of their own, each over a "caller's" communicator: a world endpoint
 * of {@link FakeNccl} made by the test (as a framework makes its own {@code ncclComm_t}), handed to
 * {@link NcclGroupCommunicator#borrowWorld} with host exchange buffers and fake streams (compute inline,
 * communication queued). No store, no rendezvous. The world is closed after the body.
 */
final class BorrowedRanks {

    /** What a rank's body gets. */
    record Rank(int rank, FakeNccl.Endpoint caller, NcclGroupCommunicator world, HostExchangeBuffers exchange,
                List<RankFailureException> failures) {
    }

    private BorrowedRanks() {
    }

    static <T> List<FakeRanks.Outcome<T>> run(FakeNccl nccl, int world, Duration timeout, Body<T> body)
            throws InterruptedException {
        NcclUniqueId id = NcclUniqueId.fromBytes(new byte[NcclUniqueId.BYTES]); // the caller's, shared as it likes
        try (ExecutorService pool = Executors.newFixedThreadPool(world)) {
            List<Future<T>> futures = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                int rank = r;
                futures.add(pool.submit(() -> runRank(nccl, world, rank, id, timeout, body)));
            }
            List<FakeRanks.Outcome<T>> outcomes = new ArrayList<>();
            for (Future<T> f : futures) {
                try {
                    outcomes.add(new FakeRanks.Outcome<>(f.get(), null));
                } catch (ExecutionException e) {
                    outcomes.add(new FakeRanks.Outcome<>(null, e.getCause()));
                }
            }
            return outcomes;
        }
    }

    interface Body<T> {
        T run(Rank rank) throws Exception;
    }

    private static <T> T runRank(FakeNccl nccl, int size, int rank, NcclUniqueId id, Duration timeout, Body<T> body)
            throws Exception {
        FakeNccl.Endpoint caller = (FakeNccl.Endpoint) nccl.factory(rank).initRank(size, id, rank);
        List<RankFailureException> failures = new CopyOnWriteArrayList<>();
        HostExchangeBuffers exchange = new HostExchangeBuffers(NcclGroupCommunicator.EXCHANGE_INTS, size);
        FakeStream compute = FakeStream.inline("compute");
        FakeStream comm = FakeStream.queued("comm-" + rank);
        try (NcclGroupCommunicator world = NcclGroupCommunicator.borrowWorld(caller, nccl.factory(rank),
                HostDeviceBackend.DEVICE, compute, comm, exchange, comm, timeout, failures::add)) {
            return body.run(new Rank(rank, caller, world, exchange, failures));
        }
    }
}
