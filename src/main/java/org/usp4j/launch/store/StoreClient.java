package org.usp4j.launch.store;

import static org.usp4j.launch.store.StoreProtocol.ADD;
import static org.usp4j.launch.store.StoreProtocol.BUSY;
import static org.usp4j.launch.store.StoreProtocol.CHALLENGE;
import static org.usp4j.launch.store.StoreProtocol.CHECK;
import static org.usp4j.launch.store.StoreProtocol.DELETE;
import static org.usp4j.launch.store.StoreProtocol.DELETE_PREFIX;
import static org.usp4j.launch.store.StoreProtocol.ERROR;
import static org.usp4j.launch.store.StoreProtocol.GET;
import static org.usp4j.launch.store.StoreProtocol.HELLO;
import static org.usp4j.launch.store.StoreProtocol.KEYS;
import static org.usp4j.launch.store.StoreProtocol.MAGIC;
import static org.usp4j.launch.store.StoreProtocol.MAX_MESSAGE_BYTES;
import static org.usp4j.launch.store.StoreProtocol.MAX_WAIT_MILLIS;
import static org.usp4j.launch.store.StoreProtocol.NUMBER;
import static org.usp4j.launch.store.StoreProtocol.OK;
import static org.usp4j.launch.store.StoreProtocol.PROOF;
import static org.usp4j.launch.store.StoreProtocol.REFUSED;
import static org.usp4j.launch.store.StoreProtocol.SET;
import static org.usp4j.launch.store.StoreProtocol.TIMEOUT;
import static org.usp4j.launch.store.StoreProtocol.VALUE;
import static org.usp4j.launch.store.StoreProtocol.VERSION;
import static org.usp4j.launch.store.StoreProtocol.WAIT;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.launch.store.StoreProtocol.Body;
import org.usp4j.launch.store.StoreProtocol.Fields;
import org.usp4j.launch.store.StoreProtocol.ProtocolException;

/**
 * A connection to a {@link StoreServer}. {@link #connect} retries until the server is up (ranks may
 * start before rank 0 binds) and proves, before anything else, that it holds the job's token, after the
 * server has proven the same (the token itself is never sent). A connection left idle for half the
 * server's idle timeout is replaced by a new one before the next request.
 *
 * <p>Every answer is awaited with a socket timeout: a blocking request's own timeout plus the client's
 * I/O timeout, so a server that dies or stalls makes the call fail with a {@link StoreException} naming
 * the store, never hang. After such a failure the connection is broken and every later call fails at
 * once. A timeout of a get, wait or barrier itself is a {@link StoreTimeoutException} and leaves the
 * connection usable.
 *
 * <p>Thread-safe; requests on one client run one at a time, so threads that block concurrently should
 * use clients of their own. Keys and values are checked against the server's limits before they are sent.
 */
public final class StoreClient implements AutoCloseable {

    private static final Logger LOG = LogManager.getLogger(StoreClient.class);
    private static final byte[] EMPTY = new byte[0];
    /** Added to a barrier round's counter by the rank that aborts it; far above any world size. */
    static final long BARRIER_ABORT = 1L << 40;
    /** A barrier round's done value when it was aborted: the missing ranks, a newline, the reason. */
    private static final String ABORTED = "aborted:";
    /**
     * Per-attempt limit on connecting and on the whole handshake, so that a black-holed address, a
     * connection closed to make room or a store busy for a moment is retried rather than waited on.
     */
    private static final long ATTEMPT_MILLIS = 5_000;
    private static final long MAX_BACKOFF_MILLIS = 1_000;

    private final String where;
    private final String host;
    private final int port;
    private final byte[] token;
    private final StoreLimits limits;
    private final long ioTimeoutMillis;
    private final int maxKeyBytes;
    private final int maxValueBytes;
    private final int maxKeysPerRequest;
    private final int maxFrameBytes;
    /** Guarded by this: how many times each barrier name was entered, so that names can be reused. */
    private final Map<String, Integer> barrierGenerations = new HashMap<>();
    /** Written under this; read by {@link #close} from any thread. */
    private volatile Link link;
    /** Guarded by this: when the last answer came, to reconnect before the server's idle timeout. */
    private long lastAnswerAt;
    /** Guarded by this: why the connection cannot be used any more, or null. */
    private String broken;
    private volatile boolean closed;

    /** One authenticated connection and what the server said about itself in the handshake. */
    private record Link(Socket socket, InputStream in, OutputStream out, int maxKeyBytes, int maxValueBytes,
                        int maxKeysPerRequest, long idleTimeoutMillis, long instance) {
    }

    private StoreClient(String where, String host, int port, byte[] token, StoreLimits own, long ioTimeoutMillis,
                        Link link) {
        this.where = where;
        this.host = host;
        this.port = port;
        this.token = token;
        this.limits = own;
        this.link = link;
        this.lastAnswerAt = System.nanoTime();
        this.ioTimeoutMillis = ioTimeoutMillis;
        // the tighter of our limits and the server's: we never send what it refuses, never read what we refuse
        this.maxKeyBytes = Math.min(own.maxKeyBytes(), link.maxKeyBytes());
        this.maxValueBytes = Math.min(own.maxValueBytes(), link.maxValueBytes());
        this.maxKeysPerRequest = Math.min(own.maxKeysPerRequest(), link.maxKeysPerRequest());
        this.maxFrameBytes = own.maxFrameBytes();
    }

    /** {@link #connect(String, int, String, Duration, StoreLimits)} with the default limits. */
    public static StoreClient connect(String host, int port, String token, Duration timeout) {
        return connect(host, port, token, timeout, StoreLimits.DEFAULT);
    }

    /**
     * Connects to the store at {@code host:port} and runs the challenge-response in which each side proves
     * it holds {@code token} without sending it (the client checks the server's proof before it sends its
     * own). Refused, reset or busy connections are retried with backoff until {@code timeout} has passed.
     * The same timeout then bounds how long the server may take to answer any request beyond that
     * request's own wait.
     *
     * @throws IllegalArgumentException for a bad port, token or timeout (before any connection attempt)
     * @throws StoreException when no connection was made within the timeout (the message gives the last
     *                        error), the store refused this client (wrong token, another usp4j version),
     *                        or the service at the address could not prove it holds the token (another
     *                        job's store, or not a store at all)
     */
    public static StoreClient connect(String host, int port, String token, Duration timeout, StoreLimits limits) {
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(limits, "limits");
        if (port < 1 || port > 65_535) {
            throw new IllegalArgumentException("store port must be in [1, 65535], got " + port);
        }
        byte[] tokenBytes = Tokens.encode(token);
        long timeoutMillis = millis(timeout, "connect timeout");
        if (timeoutMillis == 0) {
            throw new IllegalArgumentException("connect timeout must be positive, got " + timeout);
        }
        String where = host + ":" + port;
        Link link = open(where, host, port, tokenBytes, timeoutMillis, limits);
        return new StoreClient(where, host, port, tokenBytes, limits, timeoutMillis, link);
    }

    /** Connects and authenticates, retrying what may pass (refused, reset, busy) until the timeout. */
    private static Link open(String where, String host, int port, byte[] token, long timeoutMillis,
                             StoreLimits limits) {
        long deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        long backoff = 20;
        Exception last = null;
        int attempts = 0;
        while (true) {
            attempts++;
            long left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            InetSocketAddress address = new InetSocketAddress(host, port); // resolves again on each attempt
            if (address.isUnresolved()) {
                last = new java.net.UnknownHostException("cannot resolve " + host);
            } else {
                Socket socket = new Socket();
                try {
                    return handshake(where, socket, address, token, Math.max(1, left), limits);
                } catch (Refused e) {
                    closeQuietly(socket);
                    throw new StoreException("the store at " + where + " refused this client: " + e.getMessage()
                            + (e.getMessage().contains("token") ? " (every rank must use the job's token, USP4J_TOKEN)"
                            : ""));
                } catch (Impostor e) {
                    closeQuietly(socket);
                    throw new StoreException("the service at " + where + " could not prove that it holds this job's "
                            + "token: it is another job's store (started with a different USP4J_TOKEN), not a usp4j "
                            + "store, or this rank's token is wrong; nothing that reveals the token was sent");
                } catch (ProtocolException e) {
                    closeQuietly(socket);
                    throw new StoreException("the service at " + where + " is not a usp4j store: " + e.getMessage(), e);
                } catch (IOException e) {
                    closeQuietly(socket);
                    last = e;
                }
            }
            left = TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime());
            if (left <= 0) {
                throw new StoreException("could not connect to the store at " + where + " within " + timeoutMillis
                        + " ms (" + attempts + " attempts; last error: " + describe(last)
                        + "); is the process hosting it (rank 0) running, and are the address and port right?", last);
            }
            try {
                // jitter, so that ranks turned away together do not come back together
                Thread.sleep(Math.min(backoff / 2 + ThreadLocalRandom.current().nextLong(backoff / 2 + 1), left));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new StoreException("interrupted while connecting to the store at " + where, e);
            }
            backoff = Math.min(backoff * 2, MAX_BACKOFF_MILLIS);
        }
    }

    /** The store said no: wrong token, another protocol version. Not retried. */
    private static final class Refused extends IOException {
        private static final long serialVersionUID = 1L;

        Refused(String message) {
            super(message);
        }
    }

    /** The store is full of connections just now. Retried. */
    private static final class Busy extends IOException {
        private static final long serialVersionUID = 1L;

        Busy(String message) {
            super("the store is busy: " + message);
        }
    }

    /** The server's proof did not match: it does not hold our token. Not retried. */
    private static final class Impostor extends IOException {
        private static final long serialVersionUID = 1L;

        Impostor() {
            super("the server's proof does not match the token");
        }
    }

    private static Link handshake(String where, Socket socket, InetSocketAddress address, byte[] token,
                                  long leftMillis, StoreLimits limits) throws IOException {
        int attempt = (int) Math.min(leftMillis, ATTEMPT_MILLIS);
        long deadline = StoreProtocol.deadlineIn(attempt);
        socket.connect(address, attempt);
        socket.setTcpNoDelay(true);
        socket.setSoTimeout(attempt);
        InputStream in = new BufferedInputStream(socket.getInputStream());
        OutputStream out = new BufferedOutputStream(socket.getOutputStream());
        byte[] nonce = TokenProofs.nonce();
        StoreProtocol.writeFrame(out, new Body(HELLO).i32(MAGIC).i16(VERSION).string(nonce).bytes());
        Fields challenge = handshakeAnswer(in, limits, deadline, CHALLENGE, "hello");
        byte[] serverNonce = challenge.stringBytes(TokenProofs.NONCE_BYTES, "nonce");
        byte[] serverProof = challenge.stringBytes(TokenProofs.PROOF_BYTES, "proof");
        challenge.end();
        if (serverNonce.length != TokenProofs.NONCE_BYTES
                || !TokenProofs.matches(TokenProofs.server(token, nonce, serverNonce), serverProof)) {
            throw new Impostor();
        }
        StoreProtocol.writeFrame(out, new Body(PROOF).string(TokenProofs.client(token, nonce, serverNonce)).bytes());
        Fields reply = handshakeAnswer(in, limits, deadline, OK, "proof");
        int maxKey = reply.i32();
        int maxValue = reply.i32();
        int maxKeys = reply.i32();
        long idleMillis = reply.i64();
        long instance = reply.i64();
        reply.end();
        LOG.debug("connected to the store at {}", where);
        return new Link(socket, in, out, maxKey, maxValue, maxKeys, idleMillis, instance);
    }

    /** The fields of a handshake answer with status {@code expected}; refusals and busy answers throw. */
    private static Fields handshakeAnswer(InputStream in, StoreLimits limits, long deadline, byte expected,
                                          String what) throws IOException {
        Fields reply = new Fields(StoreProtocol.readFrame(in, limits.maxFrameBytes(), null, Long.MAX_VALUE,
                deadline));
        byte status = reply.u8();
        if (status == REFUSED) {
            throw new Refused(reply.string(MAX_MESSAGE_BYTES, "message"));
        }
        if (status == BUSY) {
            throw new Busy(reply.string(MAX_MESSAGE_BYTES, "message"));
        }
        if (status != expected) {
            throw new ProtocolException("unexpected answer " + status + " to the " + what);
        }
        return reply;
    }

    /** The store's address as given to {@link #connect} ({@code host:port}). */
    public String where() {
        return where;
    }

    public InetSocketAddress remoteAddress() {
        return (InetSocketAddress) link.socket().getRemoteSocketAddress();
    }

    /** Largest value this client may set (the tighter of its own and the server's limits). */
    public int maxValueBytes() {
        return maxValueBytes;
    }

    /** Stores {@code value} under {@code key}, replacing what was there, and wakes those waiting for it. */
    public void set(String key, byte[] value) {
        Objects.requireNonNull(value, "value");
        byte[] k = StoreProtocol.keyBytes(key, maxKeyBytes);
        if (value.length > maxValueBytes) {
            throw new IllegalArgumentException("value of " + value.length + " bytes for key '"
                    + StoreProtocol.shorten(key) + "' exceeds the store's limit of " + maxValueBytes + " bytes");
        }
        Reply reply = call(new Body(SET).string(k).value(value).bytes(), 0, "set '" + key + "'");
        expectStatus(reply, OK, "set");
    }

    /**
     * The value of {@code key}, waiting up to {@code timeout} for some rank to set it.
     *
     * @throws StoreTimeoutException when it was not set in time
     */
    public byte[] get(String key, Duration timeout) {
        byte[] k = StoreProtocol.keyBytes(key, maxKeyBytes);
        long wait = millis(timeout, "timeout");
        Reply reply = call(new Body(GET).string(k).i64(wait).bytes(), wait, "get '" + key + "'");
        if (reply.status() == TIMEOUT) {
            throw new StoreTimeoutException("key '" + key + "' was not set within " + wait + " ms (store at "
                    + where + ")", List.of(key));
        }
        expectStatus(reply, VALUE, "get");
        return read(() -> {
            byte[] v = reply.fields().value(maxValueBytes);
            reply.fields().end();
            return v;
        });
    }

    /**
     * Adds {@code delta} to the counter at {@code key} (absent counts as 0) atomically and returns the new
     * value. Counters are stored as decimal text, so {@link #get} reads them too.
     */
    public long add(String key, long delta) {
        byte[] k = StoreProtocol.keyBytes(key, maxKeyBytes);
        Reply reply = call(new Body(ADD).string(k).i64(delta).bytes(), 0, "add to '" + key + "'");
        expectStatus(reply, NUMBER, "add");
        return readNumber(reply);
    }

    /**
     * Returns when every one of {@code keys} is set, waiting up to {@code timeout}.
     *
     * @throws StoreTimeoutException naming the keys still missing when the time was up
     */
    public void waitFor(Collection<String> keys, Duration timeout) {
        List<byte[]> k = keyList(keys);
        long wait = millis(timeout, "timeout");
        Reply reply = call(new Body(WAIT).keys(k).i64(wait).bytes(), wait,
                "wait for " + keys.size() + " key(s)");
        if (reply.status() == TIMEOUT) {
            List<String> missing = readKeys(reply);
            throw new StoreTimeoutException("key(s) " + missing + " were not set within " + wait + " ms (store at "
                    + where + ")", missing);
        }
        expectStatus(reply, OK, "wait");
    }

    /** The keys among {@code keys} that are not set now, in the order given; never waits. */
    public List<String> missing(Collection<String> keys) {
        List<String> missing = new ArrayList<>();
        List<String> all = List.copyOf(keys);
        for (int from = 0; from < all.size(); from += maxKeysPerRequest) {
            List<String> chunk = all.subList(from, Math.min(all.size(), from + maxKeysPerRequest));
            List<byte[]> k = keyList(chunk);
            Reply reply = call(new Body(CHECK).keys(k).bytes(), 0, "check keys");
            expectStatus(reply, KEYS, "check");
            missing.addAll(readKeys(reply));
        }
        return missing;
    }

    /** Removes {@code key}; true when it was there. */
    public boolean delete(String key) {
        byte[] k = StoreProtocol.keyBytes(key, maxKeyBytes);
        Reply reply = call(new Body(DELETE).string(k).bytes(), 0, "delete '" + key + "'");
        expectStatus(reply, NUMBER, "delete");
        return readNumber(reply) == 1;
    }

    /** Removes every key that starts with {@code prefix}; returns how many. */
    public long deletePrefix(String prefix) {
        byte[] k = StoreProtocol.keyBytes(prefix, maxKeyBytes);
        Reply reply = call(new Body(DELETE_PREFIX).string(k).bytes(), 0, "delete prefix '" + prefix + "'");
        expectStatus(reply, NUMBER, "delete prefix");
        return readNumber(reply);
    }

    /**
     * Returns when all {@code worldSize} ranks have entered the barrier called {@code name}, waiting up to
     * {@code timeout}. Built on the store: each rank marks its arrival and adds one to the round's counter;
     * the one that brings it to {@code worldSize} sets the round's done key, which the others wait for, and
     * removes the previous round's keys (every rank has left that round, or it could not be in this one).
     *
     * <p>A rank whose wait runs out aborts the round for everyone: it adds {@link #BARRIER_ABORT} to the
     * counter (so a late last arrival can no longer complete it; whoever's add comes first decides) and
     * stores which ranks were missing under the done key. Every rank still waiting, or arriving later, then
     * fails at once with the same diagnosis instead of running into a timeout of its own.
     *
     * <p>A name may be reused; rounds are counted per client, so all ranks must pass the same barriers in
     * the same order.
     *
     * @throws StoreTimeoutException naming the ranks that had not arrived ({@code missing()} lists them)
     */
    public void barrier(String name, int rank, int worldSize, Duration timeout) {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("barrier '" + name + "': rank " + rank + " is not in a world of size "
                    + worldSize);
        }
        long wait = millis(timeout, "timeout");
        StoreProtocol.keyBytes(name + "/0000000000/rank/" + (worldSize - 1), maxKeyBytes); // name short enough
        int round;
        synchronized (this) {
            round = barrierGenerations.merge(name, 1, Integer::sum) - 1;
        }
        String base = name + "/" + round + "/";
        String done = base + "done";
        set(base + "rank/" + rank, EMPTY);
        long arrived = add(base + "count", 1);
        if (arrived == worldSize) {
            set(done, EMPTY);
            if (round > 0) {
                deletePrefix(name + "/" + (round - 1) + "/");
            }
            return;
        }
        if (arrived > worldSize && arrived < BARRIER_ABORT) {
            throw new StoreException("barrier '" + name + "' round " + round + " counted " + arrived
                    + " arrivals in a world of " + worldSize + ": the ranks disagree on the world size, or two jobs "
                    + "share the store and the name");
        }
        byte[] outcome;
        if (arrived > BARRIER_ABORT) {
            outcome = get(done, Duration.ofMillis(wait)); // aborted before we came: the aborter stores why
        } else {
            try {
                outcome = get(done, Duration.ofMillis(wait));
            } catch (StoreTimeoutException e) {
                long before = add(base + "count", BARRIER_ABORT) - BARRIER_ABORT;
                if (before == worldSize || before >= BARRIER_ABORT) {
                    // completed or aborted by another rank just now: its done key is on the way
                    outcome = get(done, Duration.ofMillis(wait));
                } else {
                    List<String> absent = absentRanks(base, worldSize);
                    String why = "barrier '" + name + "' timed out after " + wait + " ms on rank " + rank + ": rank(s) "
                            + absent + " of " + worldSize + " did not arrive";
                    set(done, (ABORTED + String.join(",", absent) + "\n" + why).getBytes(StandardCharsets.UTF_8));
                    throw new StoreTimeoutException(why + " (store at " + where + ")", absent);
                }
            }
        }
        if (outcome.length > 0) {
            String text = new String(outcome, StandardCharsets.UTF_8);
            if (!text.startsWith(ABORTED) || text.indexOf('\n') < 0) {
                throw new StoreException("barrier '" + name + "': unexpected done value in the store");
            }
            String list = text.substring(ABORTED.length(), text.indexOf('\n'));
            List<String> absent = list.isEmpty() ? List.of() : List.of(list.split(","));
            throw new StoreTimeoutException(text.substring(text.indexOf('\n') + 1) + " (seen by rank " + rank
                    + "; store at " + where + ")", absent);
        }
    }

    private List<String> absentRanks(String base, int worldSize) {
        List<String> rankKeys = new ArrayList<>(worldSize);
        for (int r = 0; r < worldSize; r++) {
            rankKeys.add(base + "rank/" + r);
        }
        List<String> absent = new ArrayList<>();
        for (String k : missing(rankKeys)) {
            absent.add(k.substring(k.lastIndexOf('/') + 1));
        }
        return absent;
    }

    /** Closes the connection; a request blocked on another thread fails. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        closeQuietly(link.socket());
    }

    public boolean isClosed() {
        return closed;
    }

    @Override
    public String toString() {
        return "StoreClient[" + where + (closed ? ", closed" : "") + "]";
    }

    // ---- plumbing ----

    /** A reply's status and the fields after it. */
    private record Reply(byte status, Fields fields) {
    }

    /** Sends one request and reads its reply within {@code waitMillis} plus the I/O timeout. */
    private synchronized Reply call(byte[] request, long waitMillis, String what) {
        if (closed) {
            throw new IllegalStateException("store client for " + where + " is closed");
        }
        if (broken != null) {
            throw new StoreException("store at " + where + ": cannot " + what + ", the connection broke earlier ("
                    + broken + ")");
        }
        Link l = freshLink(what);
        long limit = waitMillis + ioTimeoutMillis;
        try {
            l.socket().setSoTimeout((int) Math.min(Integer.MAX_VALUE, limit));
            StoreProtocol.writeFrame(l.out(), request);
            // a total deadline too, so that a server trickling bytes cannot stretch the answer
            Fields reply = new Fields(StoreProtocol.readFrame(l.in(), maxFrameBytes, null, Long.MAX_VALUE,
                    StoreProtocol.deadlineIn(limit)));
            lastAnswerAt = System.nanoTime();
            byte status = reply.u8();
            if (status == ERROR || status == REFUSED) {
                String message = reply.string(MAX_MESSAGE_BYTES, "message");
                if (status == REFUSED) {
                    broken = "refused: " + message;
                    closeQuietly(l.socket());
                }
                throw new StoreException("store at " + where + ": " + what + " failed: " + message);
            }
            return new Reply(status, reply);
        } catch (SocketTimeoutException e) {
            broken = "no answer within " + limit + " ms";
            closeQuietly(l.socket());
            throw new StoreException("the store at " + where + " did not answer (" + what + ") within " + limit
                    + " ms: the process hosting it (rank 0) may have stalled", e);
        } catch (ProtocolException e) {
            broken = e.getMessage();
            closeQuietly(l.socket());
            throw new StoreException("store at " + where + ": bad answer to " + what + ": " + e.getMessage(), e);
        } catch (IOException e) {
            if (closed) {
                throw new IllegalStateException("store client for " + where + " was closed during " + what, e);
            }
            broken = "connection lost: " + e.getMessage();
            closeQuietly(l.socket());
            throw new StoreException("lost the connection to the store at " + where + " during " + what + " ("
                    + e.getMessage() + "): the process hosting it (rank 0) may have exited or restarted", e);
        }
    }

    /**
     * The connection to use now. After half the server's idle timeout without a request, the server may be
     * about to close this one, so a new one is made (keys live in the server, not in connections); it must
     * lead to the same store instance, else the store was restarted and its keys are gone.
     */
    private Link freshLink(String what) {
        Link l = link;
        long idleNanos = TimeUnit.MILLISECONDS.toNanos(l.idleTimeoutMillis());
        if (System.nanoTime() - lastAnswerAt < idleNanos / 2) {
            return l;
        }
        Link fresh;
        try {
            fresh = open(where, host, port, token, ioTimeoutMillis, limits);
        } catch (StoreException e) {
            broken = "could not reconnect after an idle period";
            closeQuietly(l.socket());
            throw new StoreException("store at " + where + ": cannot " + what + ": reconnecting after an idle period "
                    + "failed: " + e.getMessage(), e);
        }
        closeQuietly(l.socket());
        if (fresh.instance() != l.instance()) {
            closeQuietly(fresh.socket());
            broken = "the store was restarted";
            throw new StoreException("the store at " + where + " was restarted since this client joined, so the keys "
                    + "of this job are gone; cannot " + what + " (restart the whole job)");
        }
        link = fresh;
        if (closed) {
            closeQuietly(fresh.socket());
            throw new IllegalStateException("store client for " + where + " was closed during " + what);
        }
        LOG.debug("reconnected to the store at {} after an idle period", where);
        lastAnswerAt = System.nanoTime();
        return fresh;
    }

    private void expectStatus(Reply reply, byte expected, String what) {
        if (reply.status() != expected) {
            throw new StoreException("store at " + where + ": unexpected answer " + reply.status() + " to " + what);
        }
        if (expected == OK) {
            read(() -> {
                reply.fields().end();
                return null;
            });
        }
    }

    @FunctionalInterface
    private interface Read<T> {
        T read() throws ProtocolException;
    }

    private <T> T read(Read<T> reader) {
        try {
            return reader.read();
        } catch (ProtocolException e) {
            throw new StoreException("store at " + where + ": bad answer: " + e.getMessage(), e);
        }
    }

    private List<String> readKeys(Reply reply) {
        return read(() -> {
            List<String> keys = reply.fields().strings(maxKeysPerRequest, maxKeyBytes, "key");
            reply.fields().end();
            return keys;
        });
    }

    private long readNumber(Reply reply) {
        return read(() -> {
            long n = reply.fields().i64();
            reply.fields().end();
            return n;
        });
    }

    private List<byte[]> keyList(Collection<String> keys) {
        Objects.requireNonNull(keys, "keys");
        if (keys.size() > maxKeysPerRequest) {
            throw new IllegalArgumentException(keys.size() + " keys in one request exceed the store's limit of "
                    + maxKeysPerRequest);
        }
        List<byte[]> list = new ArrayList<>(keys.size());
        for (String key : keys) {
            list.add(StoreProtocol.keyBytes(key, maxKeyBytes));
        }
        return list;
    }

    private static long millis(Duration d, String name) {
        Objects.requireNonNull(d, name);
        if (d.isNegative()) {
            throw new IllegalArgumentException(name + " must not be negative, got " + d);
        }
        if (d.compareTo(Duration.ofMillis(MAX_WAIT_MILLIS)) > 0) {
            throw new IllegalArgumentException(name + " of " + d + " exceeds the store's limit of "
                    + Duration.ofMillis(MAX_WAIT_MILLIS));
        }
        return d.toMillis();
    }

    private static String describe(Exception e) {
        return e == null ? "none" : e.getMessage() != null ? e.getMessage() : e.toString();
    }

    private static void closeQuietly(Socket s) {
        try {
            s.close();
        } catch (IOException e) {
            // closing
        }
    }
}
