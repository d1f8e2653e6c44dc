package org.usp4j.launch;

import java.net.InetAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.function.Supplier;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.launch.store.StoreClient;
import org.usp4j.launch.store.StoreException;
import org.usp4j.launch.store.StoreServer;
import org.usp4j.launch.store.StoreTimeoutException;
import org.usp4j.launch.store.Tokens;

/**
 * The ranks of one job meeting through the store: rank 0 hosts a {@link StoreServer} at
 * {@code masterAddr:storePort}, every rank (rank 0 too) connects a {@link StoreClient} with the job's token,
 * and {@link #join} returns once all {@code worldSize} ranks are there. Then {@link #broadcast} carries a
 * value from rank 0 to all (the NCCL unique id) and {@link #barrier} lines the ranks up.
 *
 * <p>Every wait is bounded by the environment's timeout; when it runs out the error names the ranks that
 * did not arrive. Rank 0 dying takes the store with it, and every other rank's pending or next step fails
 * at once with a message saying so. {@link #close} passes a last barrier so that rank 0 does not stop the
 * store while others still read from it; it is idempotent and never throws for a peer that is gone.
 */
public final class Rendezvous implements AutoCloseable {

    private static final Logger LOG = LogManager.getLogger(Rendezvous.class);
    private static final String PREFIX = "usp4j/rdzv/";
    /** How long rank 0 keeps the store up after the last barrier for the others to hang up. */
    private static final Duration LINGER = Duration.ofSeconds(5);

    private final LaunchEnvironment env;
    private final StoreServer server; // rank 0 only
    private final StoreClient store;
    private final Duration timeout;
    /** Guarded by this: how often each key was broadcast, so that a key may be broadcast again. */
    private final Map<String, Integer> broadcastRounds = new HashMap<>();
    private boolean closed;
    /** Set when a step failed: the ranks are no longer in step, so close skips the leave barrier. */
    private volatile boolean failed;

    private Rendezvous(LaunchEnvironment env, StoreServer server, StoreClient store) {
        this.env = env;
        this.server = server;
        this.store = store;
        this.timeout = env.timeout();
    }

    /**
     * Joins the job described by {@code env}: rank 0 starts the store, every rank connects and waits for
     * all others. A world of one runs a private store on an ephemeral port (with a fresh token when none
     * was set), so callers need no special case.
     *
     * @throws IllegalArgumentException when a multi-process job has no token (saying how to set one)
     * @throws RendezvousException      when rank 0 cannot host the store, a rank cannot reach it, or not
     *                                  every rank joined within the timeout (naming the missing ranks)
     */
    public static Rendezvous join(LaunchEnvironment env) {
        Objects.requireNonNull(env, "env");
        String token = env.isDistributed() ? env.requireToken() : env.hasToken() ? env.token() : Tokens.generate();
        String who = "rank " + env.rank() + " of " + env.worldSize();
        StoreServer server = null;
        int port = env.storePort();
        if (env.rank() == 0) {
            requireReachableBind(env);
            try {
                server = StoreServer.start(env.masterAddr(), port, token);
            } catch (StoreException e) {
                throw new RendezvousException(who + ": cannot host the rendezvous store on " + env.masterAddr() + ":"
                        + port + " (from " + env.source().description() + "): " + e.getMessage()
                        + "; the address must be this host's and the port free", e);
            }
            port = server.port();
        }
        StoreClient client = null;
        try {
            client = StoreClient.connect(env.masterAddr(), port, token, env.timeout());
            Rendezvous r = new Rendezvous(env, server, client);
            r.claimRank();
            r.barrierOrThrow(PREFIX + "join", "join the rendezvous");
            LOG.debug("{} joined the rendezvous at {}:{}", who, env.masterAddr(), port);
            return r;
        } catch (StoreException e) { // connecting or claiming the rank; the join barrier throws its own
            closeQuietly(client);
            stopStore(server, env.timeout());
            throw new RendezvousException(who + ": cannot join the rendezvous at " + env.masterAddr() + ":" + port
                    + ": " + e.getMessage(), e);
        } catch (RuntimeException e) {
            closeQuietly(client);
            stopStore(server, env.timeout());
            throw e;
        }
    }

    public LaunchEnvironment environment() {
        return env;
    }

    public int rank() {
        return env.rank();
    }

    public int worldSize() {
        return env.worldSize();
    }

    /** The store, for what the rendezvous does not cover. Keys starting with {@code usp4j/} are reserved. */
    public StoreClient store() {
        requireOpen();
        return store;
    }

    /**
     * Rank 0 calls {@code rootValue} and publishes the result under {@code key}; every rank returns it.
     * Collective: all ranks call it in the same order; a key may be broadcast again (each call is a new
     * round).
     *
     * @throws RendezvousException when the value did not come within the timeout or the store was lost
     */
    public byte[] broadcast(String key, Supplier<byte[]> rootValue) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(rootValue, "rootValue");
        requireOpen();
        int round;
        synchronized (this) {
            round = broadcastRounds.merge(key, 1, Integer::sum) - 1;
        }
        String storeKey = PREFIX + "bcast/" + key + "/" + round;
        if (rank() == 0) {
            byte[] value = Objects.requireNonNull(rootValue.get(), "rootValue returned null");
            wrap(() -> {
                store.set(storeKey, value);
                return null;
            }, "publish '" + key + "'");
            return value.clone();
        }
        return wrap(() -> store.get(storeKey, timeout), "receive '" + key + "' from rank 0");
    }

    /**
     * Every rank publishes {@code value} under {@code key}; rank 0 returns all of them in rank order, the
     * others only their own. Collective, like {@link #broadcast}: each call with a key is a new round.
     *
     * @throws RendezvousException naming the rank whose value did not come within the timeout, or when the
     *                             store was lost
     */
    public List<byte[]> gatherToRoot(String key, byte[] value) {
        Objects.requireNonNull(key, "key");
        Objects.requireNonNull(value, "value");
        requireOpen();
        int round;
        synchronized (this) {
            round = broadcastRounds.merge("gather/" + key, 1, Integer::sum) - 1;
        }
        String base = PREFIX + "gather/" + key + "/" + round + "/";
        wrap(() -> {
            store.set(base + rank(), value);
            return null;
        }, "publish '" + key + "'");
        if (rank() != 0) {
            return List.of(value.clone());
        }
        List<byte[]> all = new ArrayList<>(worldSize());
        for (int r = 0; r < worldSize(); r++) {
            int from = r;
            try {
                all.add(store.get(base + from, timeout));
            } catch (StoreTimeoutException e) {
                failed = true;
                throw new RendezvousException("rank 0 of " + worldSize() + ": could not receive '" + key + "' from rank "
                        + from + " within " + timeout.toMillis() + " ms", List.of(from), e);
            } catch (StoreException e) {
                failed = true;
                throw lost("receive '" + key + "' from rank " + from, e);
            }
        }
        return all;
    }

    /**
     * Returns when every rank has called {@code barrier(name)}.
     *
     * @throws RendezvousException naming the ranks that did not arrive within the timeout
     */
    public void barrier(String name) {
        Objects.requireNonNull(name, "name");
        requireOpen();
        barrierOrThrow("user/" + name, "pass barrier '" + name + "'");
    }

    /**
     * Leaves: unless a step of this rendezvous has failed, waits (up to the timeout) until every rank is
     * leaving, so that rank 0 does not stop the store under the others; then closes the connection and, on
     * rank 0, the store, once every other rank has said it reads nothing more (or after a few seconds);
     * idle connections do not delay it. A peer that is gone only shortens the wait and is logged.
     * Idempotent.
     */
    @Override
    public void close() {
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
        }
        boolean together = false;
        try {
            if (!failed) {
                store.barrier(PREFIX + "leave", rank(), worldSize(), timeout);
                if (rank() != 0) {
                    store.set(PREFIX + "left/" + rank(), new byte[0]); // this rank reads nothing more
                } else {
                    awaitOthersLeft();
                }
                together = true;
            }
        } catch (StoreException e) {
            LOG.warn("rank {}: leaving the rendezvous without the others: {}", rank(), e.getMessage());
        } catch (IllegalStateException e) {
            // the store client was closed under us
        } finally {
            closeQuietly(store);
            if (together) {
                closeStore(server);
            } else {
                stopStore(server, timeout);
            }
        }
    }

    /** Rank 0, after the leave barrier: every other rank has said it reads nothing more (or a few seconds passed). */
    private void awaitOthersLeft() {
        long deadline = System.nanoTime() + Math.min(timeout.toNanos(), LINGER.toNanos());
        List<String> keys = new ArrayList<>();
        for (int r = 1; r < worldSize(); r++) {
            keys.add(PREFIX + "left/" + r);
        }
        int chunk = 512; // well under the store's keys-per-request limit
        try {
            for (int from = 0; from < keys.size(); from += chunk) {
                long left = Math.max(0, deadline - System.nanoTime());
                store.waitFor(keys.subList(from, Math.min(keys.size(), from + chunk)), Duration.ofNanos(left));
            }
        } catch (StoreTimeoutException e) {
            LOG.debug("rank 0: stopping the store before rank(s) {} said they left", e.missing());
        }
    }

    private static void closeStore(StoreServer server) {
        if (server != null) {
            server.close();
        }
    }

    /**
     * Leaves without the leave barrier, for a rank whose job failed elsewhere (a collective timed out, a
     * peer died): the others may never arrive, so waiting for them would only delay the error. Idempotent.
     */
    public void closeAfterFailure() {
        failed = true;
        close();
    }

    /**
     * Rank 0 after a failure: the others may still be reading an abort's diagnosis; give the requests in
     * flight a moment to be answered, then stop. Idle connections (anyone's) do not hold the store up.
     */
    private static void stopStore(StoreServer server, Duration timeout) {
        if (server == null) {
            return;
        }
        long deadline = System.nanoTime() + Math.min(timeout.toNanos(), LINGER.toNanos());
        while (server.requestsInFlight() > 0 && System.nanoTime() - deadline < 0) {
            try {
                Thread.sleep(5);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                break;
            }
        }
        server.close();
    }

    @Override
    public String toString() {
        return "Rendezvous[rank " + rank() + " of " + worldSize() + " at " + store.where() + "]";
    }

    // ---- steps ----

    /** Refuses a second process that claims this rank: the rank count alone would let it stand in for another. */
    private void claimRank() {
        String host;
        try {
            host = InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            host = "unknown-host";
        }
        String me = host + " pid " + ProcessHandle.current().pid();
        long claims = store.add(PREFIX + "claims/" + rank(), 1);
        if (claims > 1) {
            String other = new String(store.get(PREFIX + "who/" + rank(), timeout), StandardCharsets.UTF_8);
            throw new RendezvousException("rank " + rank() + " of " + worldSize() + ": two processes claim rank "
                    + rank() + " (" + other + " and " + me + "); check the launcher's rank variables", null);
        }
        store.set(PREFIX + "who/" + rank(), me.getBytes(StandardCharsets.UTF_8));
    }

    private void barrierOrThrow(String name, String what) {
        try {
            store.barrier(name, rank(), worldSize(), timeout);
        } catch (StoreTimeoutException e) {
            failed = true;
            List<Integer> missing = new ArrayList<>();
            for (String r : e.missing()) {
                missing.add(Integer.parseInt(r));
            }
            awaitArrivedRanksGiveUp(missing);
            throw new RendezvousException("rank " + rank() + " of " + worldSize() + ": could not " + what
                    + " within " + timeout.toMillis() + " ms: rank(s) " + missing + " did not arrive", missing, e);
        } catch (StoreException e) {
            failed = true;
            throw lost(what, e);
        }
    }

    /**
     * After a barrier timed out: every rank that did arrive will time out too, a little later (its clock
     * started later). A rank other than 0 says so in the store; rank 0, which hosts it, waits (a few
     * seconds at most) until those ranks have, so that each of them reports the missing ranks rather than
     * a store that vanished under it.
     */
    private void awaitArrivedRanksGiveUp(List<Integer> missing) {
        try {
            if (rank() != 0) {
                store.set(PREFIX + "left/" + rank(), new byte[0]);
                return;
            }
            List<String> keys = new ArrayList<>();
            for (int r = 1; r < worldSize(); r++) {
                if (!missing.contains(r)) {
                    keys.add(PREFIX + "left/" + r);
                }
            }
            if (!keys.isEmpty() && keys.size() <= 512) {
                store.waitFor(keys, Duration.ofNanos(Math.min(timeout.toNanos(), LINGER.toNanos())));
            }
        } catch (StoreException | IllegalStateException e) {
            LOG.debug("rank {}: not waiting for the other ranks to give up: {}", rank(), e.getMessage());
        }
    }

    private <T> T wrap(Supplier<T> step, String what) {
        try {
            return step.get();
        } catch (StoreTimeoutException e) {
            failed = true;
            throw new RendezvousException("rank " + rank() + " of " + worldSize() + ": could not " + what + " within "
                    + timeout.toMillis() + " ms", List.of(0), e);
        } catch (StoreException e) {
            failed = true;
            throw lost(what, e);
        }
    }

    private RendezvousException lost(String what, StoreException e) {
        return new RendezvousException("rank " + rank() + " of " + worldSize() + ": could not " + what + ": "
                + e.getMessage(), e);
    }

    private synchronized void requireOpen() {
        if (closed) {
            throw new IllegalStateException("rank " + rank() + ": the rendezvous is closed");
        }
    }

    /**
     * Rank 0 binds MASTER_ADDR as given. When that name resolves to a loopback address here but the job
     * spans nodes (a host name mapped to 127.0.1.1 in /etc/hosts is the usual case), the other nodes could
     * never connect: say so now instead of letting them time out.
     */
    private static void requireReachableBind(LaunchEnvironment env) {
        if (env.localWorldSize() == env.worldSize()) {
            return; // one node: loopback is fine
        }
        try {
            InetAddress a = InetAddress.getByName(env.masterAddr());
            if (a.isLoopbackAddress()) {
                throw new IllegalArgumentException("rank 0: the master address '" + env.masterAddr()
                        + "' resolves to the loopback address " + a.getHostAddress() + " here, but the job spans "
                        + "several nodes that could not reach it; use this node's network address");
            }
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("rank 0: cannot resolve the master address '" + env.masterAddr() + "'",
                    e);
        }
    }

    private static void closeQuietly(AutoCloseable c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (Exception e) {
            // closing
        }
    }
}
