package org.usp4j.comm.nccl;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.ServerSocket;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.usp4j.launch.LaunchEnvironment;
import org.usp4j.launch.LaunchSource;
import org.usp4j.launch.Rendezvous;
import org.usp4j.launch.store.Tokens;

/**
 * Runs one body per rank on threads of their own, each rank with a real {@link Rendezvous} (rank 0 hosts
 * the store, so heartbeats and barriers are the real ones), fake streams and an
 * {@link NcclGroupCommunicator} over {@link FakeNccl}. The communicator and the rendezvous are closed
 * after the body, the communicator first.
 */
final class FakeRanks {

    /** What a rank's body gets. */
    record Rank(int rank, NcclGroupCommunicator world, FakeStream compute, FakeStream comm, Rendezvous rendezvous,
                List<RankFailureException> failures) {
    }

    interface Body<T> {
        T run(Rank rank) throws Exception;
    }

    /** A rank's result or what it threw. */
    record Outcome<T>(T value, Throwable error) {
        T get() {
            if (error != null) {
                throw new AssertionError("rank failed: " + error, error);
            }
            return value;
        }
    }

    private FakeRanks() {
    }

    static <T> List<Outcome<T>> run(FakeNccl nccl, int world, Duration timeout, boolean inlineCompute, Body<T> body)
            throws InterruptedException {
        int port = freePort();
        String token = Tokens.generate();
        try (ExecutorService pool = Executors.newFixedThreadPool(world)) {
            List<Future<T>> futures = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                LaunchEnvironment env = new LaunchEnvironment(r, world, r, world, "127.0.0.1", port, token, timeout,
                        LaunchSource.USP4J);
                int rank = r;
                futures.add(pool.submit(() -> runRank(nccl, env, rank, inlineCompute, body)));
            }
            List<Outcome<T>> outcomes = new ArrayList<>();
            for (Future<T> f : futures) {
                try {
                    outcomes.add(new Outcome<>(f.get(), null));
                } catch (ExecutionException e) {
                    outcomes.add(new Outcome<>(null, e.getCause()));
                }
            }
            return outcomes;
        }
    }

    /** The values of every rank, failing the test with the first rank's error. */
    static <T> List<T> values(List<Outcome<T>> outcomes) {
        List<T> values = new ArrayList<>();
        for (Outcome<T> o : outcomes) {
            values.add(o.get());
        }
        return values;
    }

    private static <T> T runRank(FakeNccl nccl, LaunchEnvironment env, int rank, boolean inlineCompute, Body<T> body)
            throws Exception {
        List<RankFailureException> failures = new CopyOnWriteArrayList<>();
        try (Rendezvous rdzv = Rendezvous.join(env);
             FakeStream compute = inlineCompute ? FakeStream.inline("compute") : FakeStream.queued("compute-" + rank);
             FakeStream comm = FakeStream.queued("comm-" + rank);
             NcclGroupCommunicator world = NcclGroupCommunicator.createWorld(rdzv, nccl.factory(rank),
                     HostDeviceBackend.DEVICE, compute, comm, null, failures::add)) {
            return body.run(new Rank(rank, world, compute, comm, rdzv, failures));
        }
    }

    static int freePort() {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
