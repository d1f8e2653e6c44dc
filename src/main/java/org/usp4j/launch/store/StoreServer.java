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
import static org.usp4j.launch.store.StoreProtocol.MAX_HANDSHAKE_FRAME;
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
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketAddress;
import java.net.UnknownHostException;
import java.nio.charset.StandardCharsets;
import java.net.SocketTimeoutException;
import java.security.SecureRandom;
import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.locks.Condition;
import java.util.concurrent.locks.ReentrantLock;
import java.util.function.BooleanSupplier;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.launch.store.StoreProtocol.Body;
import org.usp4j.launch.store.StoreProtocol.Fields;
import org.usp4j.launch.store.StoreProtocol.PeerClosedException;
import org.usp4j.launch.store.StoreProtocol.ProtocolException;

/**
 * The rendezvous store's server: a key-value map over TCP that answers only clients presenting the job's
 * token (the role torchrun's TCPStore plays). Rank 0 hosts it (or any process, standalone); every rank,
 * rank 0 included, talks to it through a {@link StoreClient}.
 *
 * <p>One virtual thread serves each connection; blocking gets and waits park that thread on a condition
 * that every change signals. Nothing blocks forever, however slowly a peer sends: a connection must
 * complete the challenge-response ({@link TokenProofs}) within the handshake timeout, a started frame must
 * complete within the frame timeout (both checked after every read), an authenticated connection without
 * a request for the idle timeout is closed, idle reads wake every {@value #POLL_MILLIS} ms to notice a
 * shutdown, and every wait has a client-given deadline. Strangers (connections still in their handshake)
 * have a pool of their own, bounded in all and per peer address, whose oldest member is closed to make
 * room, so they cannot lock ranks out (see {@link StoreLimits}). A failing accept (out of file
 * descriptors) is retried with backoff. Lengths are checked against {@link StoreLimits} before anything is
 * allocated; an oversized or malformed frame gets one error reply and the connection is closed.
 * {@link #close()} is idempotent, ends every connection at once and frees the port.
 */
public final class StoreServer implements AutoCloseable {

    /** How often an idle connection's read wakes up to check for a shutdown. */
    static final int POLL_MILLIS = 200;

    private static final Logger LOG = LogManager.getLogger(StoreServer.class);
    private static final AtomicInteger CONNECTION_IDS = new AtomicInteger();

    private final byte[] token;
    private final StoreLimits limits;
    private final ServerSocket serverSocket;
    private final InetSocketAddress address;
    private final Thread acceptThread;
    private final Set<Socket> connections = ConcurrentHashMap.newKeySet();
    /** Guards the two pools: connections in their handshake (oldest first) and the authenticated count. */
    private final Object admission = new Object();
    private final LinkedHashSet<Connection> unauthenticated = new LinkedHashSet<>();
    private final Map<InetAddress, Integer> unauthenticatedPerPeer = new HashMap<>();
    private int authenticatedCount;
    private final AtomicInteger requestsInFlight = new AtomicInteger();
    /** Told to every client, so that one reconnecting after an idle close knows it is the same store. */
    private final long instance = new SecureRandom().nextLong();
    /** Refusals and evictions can come by the thousand from a hostile peer: warn once per burst. */
    private final ThrottledWarning refusals = new ThrottledWarning(LOG, Duration.ofSeconds(10));

    private final ReentrantLock lock = new ReentrantLock();
    private final Condition changed = lock.newCondition();
    /** Guarded by {@link #lock}. Sorted so that a prefix is one contiguous range. */
    private final TreeMap<String, byte[]> entries = new TreeMap<>();
    /** Guarded by {@link #lock}: UTF-8 key bytes plus value bytes of every entry. */
    private long storedBytes;

    private volatile boolean closed;

    private StoreServer(ServerSocket serverSocket, byte[] token, StoreLimits limits) {
        this.serverSocket = serverSocket;
        this.token = token;
        this.limits = limits;
        this.address = new InetSocketAddress(serverSocket.getInetAddress(), serverSocket.getLocalPort());
        this.acceptThread = Thread.ofPlatform().daemon().name("usp4j-store-accept-" + address.getPort())
                .unstarted(this::acceptLoop);
    }

    /** Binds {@code host:port} (port 0: an ephemeral port, see {@link #port()}) with the default limits. */
    public static StoreServer start(String host, int port, String token) {
        return start(host, port, token, StoreLimits.DEFAULT);
    }

    /**
     * Binds {@code host:port} and starts serving. {@code host} is resolved and bound as given (use
     * {@code 0.0.0.0} for every interface). Throws {@link IllegalArgumentException} for a bad port, host
     * or token, {@link StoreException} when the address cannot be bound (in use, not local).
     */
    public static StoreServer start(String host, int port, String token, StoreLimits limits) {
        Objects.requireNonNull(host, "host");
        Objects.requireNonNull(limits, "limits");
        if (port < 0 || port > 65_535) {
            throw new IllegalArgumentException("store port must be in [0, 65535], got " + port);
        }
        byte[] tokenBytes = Tokens.encode(token);
        InetAddress bindAddress;
        try {
            bindAddress = InetAddress.getByName(host);
        } catch (UnknownHostException e) {
            throw new IllegalArgumentException("cannot resolve the store's bind address '" + host + "'", e);
        }
        ServerSocket socket = null;
        try {
            socket = new ServerSocket();
            socket.setReuseAddress(true);
            socket.bind(new InetSocketAddress(bindAddress, port), Math.min(limits.maxConnections(), 4096));
            socket.setSoTimeout(0);
            StoreServer server = new StoreServer(socket, tokenBytes, limits);
            server.acceptThread.start();
            LOG.debug("store listening on {}", server.address);
            return server;
        } catch (IOException e) {
            closeQuietly(socket);
            throw new StoreException("cannot bind the store to " + host + ":" + port + ": " + e.getMessage(), e);
        }
    }

    /** The bound address, with the actual port when 0 was asked for. */
    public InetSocketAddress address() {
        return address;
    }

    public int port() {
        return address.getPort();
    }

    /** Connections open now, authenticated or not. */
    public int connectionCount() {
        return connections.size();
    }

    /** Connections open now that have proven the token. */
    public int authenticatedCount() {
        synchronized (admission) {
            return authenticatedCount;
        }
    }

    /** Requests being served now (a blocking get or wait counts until it is answered); idle connections do not. */
    public int requestsInFlight() {
        return requestsInFlight.get();
    }

    /** Keys held now. */
    public int keyCount() {
        lock.lock();
        try {
            return entries.size();
        } finally {
            lock.unlock();
        }
    }

    public boolean isClosed() {
        return closed;
    }

    /** Stops accepting, ends every connection (their pending waits fail) and frees the port. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        closeQuietly(serverSocket);
        lock.lock();
        try {
            changed.signalAll();
        } finally {
            lock.unlock();
        }
        for (Socket s : connections) {
            closeQuietly(s);
        }
        acceptThread.interrupt(); // ends a backoff sleep after a failed accept
        try {
            acceptThread.join(TimeUnit.SECONDS.toMillis(5));
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        LOG.debug("store on {} closed", address);
    }

    @Override
    public String toString() {
        return "StoreServer[" + address + (closed ? ", closed" : "") + "]";
    }

    // ---- connections ----

    /** One accepted socket: where it came from and whether it has proven the token. */
    private static final class Connection {
        final Socket socket;
        final InetAddress peer;
        final long acceptedAt = System.nanoTime();
        /** Guarded by the server's {@code admission} lock. */
        boolean authenticated;

        Connection(Socket socket) {
            this.socket = socket;
            this.peer = socket.getInetAddress();
        }
    }

    private void acceptLoop() {
        long backoff = 0;
        long failures = 0;
        while (!closed) {
            Socket socket;
            try {
                socket = serverSocket.accept();
            } catch (IOException e) {
                if (closed) {
                    return;
                }
                // EMFILE/ENFILE and friends are transient: the pending connection stays in the backlog.
                // Closing the oldest stranger frees a descriptor when strangers used them up.
                if (failures++ == 0) {
                    LOG.warn("store on {}: cannot accept a connection ({}); retrying with backoff", address,
                            e.getMessage());
                }
                evictOldestUnauthenticated(null);
                backoff = backoff == 0 ? 10 : Math.min(backoff * 2, 500);
                try {
                    Thread.sleep(backoff);
                } catch (InterruptedException ie) {
                    return;
                }
                continue;
            }
            if (failures > 0) {
                LOG.info("store on {}: accepting again after {} failed attempts", address, failures);
                failures = 0;
                backoff = 0;
            }
            if (closed) {
                closeQuietly(socket);
                return;
            }
            Connection c = new Connection(socket);
            connections.add(socket);
            if (closed) { // close() may have run between the check and the add
                connections.remove(socket);
                closeQuietly(socket);
                return;
            }
            admit(c);
            try {
                Thread.ofVirtual().name("usp4j-store-conn-" + CONNECTION_IDS.incrementAndGet()).start(() -> serve(c));
            } catch (RuntimeException | OutOfMemoryError e) {
                release(c);
                closeQuietly(socket);
                refusals.note("cannot start a connection thread: " + e);
            }
        }
    }

    /** Adds a new connection to the handshake pool, closing the oldest stranger when the pool is full. */
    private void admit(Connection c) {
        synchronized (admission) {
            int fromPeer = unauthenticatedPerPeer.getOrDefault(c.peer, 0);
            if (fromPeer >= limits.maxUnauthenticatedPerPeer()) {
                evictOldestUnauthenticated(c.peer);
            } else if (unauthenticated.size() >= limits.maxUnauthenticated()) {
                evictOldestUnauthenticated(null);
            }
            unauthenticated.add(c);
            unauthenticatedPerPeer.merge(c.peer, 1, Integer::sum);
        }
    }

    /** Closes the oldest connection still in its handshake (from {@code peer}, or any when null). */
    private void evictOldestUnauthenticated(InetAddress peer) {
        Connection oldest = null;
        synchronized (admission) {
            for (Connection c : unauthenticated) {
                if (peer == null || peer.equals(c.peer)) {
                    oldest = c;
                    break;
                }
            }
            if (oldest != null) {
                removeUnauthenticated(oldest);
            }
        }
        if (oldest != null) {
            closeQuietly(oldest.socket);
            refusals.note("closed the oldest unauthenticated connection (from " + oldest.peer.getHostAddress()
                    + ") to make room");
        }
    }

    /** Guarded by admission: true when {@code c} was still in the handshake pool. */
    private boolean removeUnauthenticated(Connection c) {
        if (!unauthenticated.remove(c)) {
            return false;
        }
        unauthenticatedPerPeer.computeIfPresent(c.peer, (k, n) -> n == 1 ? null : n - 1);
        return true;
    }

    /** The connection ends: it leaves whichever pool it was in. */
    private void release(Connection c) {
        synchronized (admission) {
            if (c.authenticated) {
                c.authenticated = false;
                authenticatedCount--;
            } else {
                removeUnauthenticated(c);
            }
        }
        connections.remove(c.socket);
    }

    private void serve(Connection c) {
        Socket socket = c.socket;
        SocketAddress remote = socket.getRemoteSocketAddress();
        try (socket) {
            socket.setTcpNoDelay(true);
            socket.setSoTimeout(POLL_MILLIS);
            InputStream in = new BufferedInputStream(socket.getInputStream());
            OutputStream out = new BufferedOutputStream(socket.getOutputStream());
            if (!handshake(c, in, out, remote)) {
                return;
            }
            long frameTimeout = limits.frameTimeout().toNanos();
            long idleTimeout = limits.idleTimeout().toNanos();
            int maxFrame = limits.maxFrameBytes();
            while (!closed) {
                byte[] request;
                long idleSince = System.nanoTime();
                try {
                    request = StoreProtocol.readFrame(in, maxFrame,
                            () -> !closed && System.nanoTime() - idleSince < idleTimeout, frameTimeout,
                            StoreProtocol.NO_DEADLINE);
                } catch (ProtocolException e) {
                    LOG.warn("store: closing the connection from {}: {}", remote, e.getMessage());
                    StoreProtocol.writeFrame(out, error(REFUSED, e.getMessage()));
                    return;
                } catch (SocketTimeoutException e) {
                    if (!closed) {
                        LOG.debug("store: closing the connection from {}: {}", remote,
                                System.nanoTime() - idleSince >= idleTimeout ? "idle for "
                                        + limits.idleTimeout().toMillis() + " ms" : e.getMessage());
                    }
                    return;
                }
                requestsInFlight.incrementAndGet();
                try {
                    byte[] reply;
                    try {
                        reply = handle(new Fields(request));
                    } catch (ProtocolException e) {
                        LOG.warn("store: closing the connection from {}: {}", remote, e.getMessage());
                        StoreProtocol.writeFrame(out, error(REFUSED, e.getMessage()));
                        return;
                    } catch (RequestException e) {
                        reply = error(ERROR, e.getMessage());
                    }
                    StoreProtocol.writeFrame(out, reply);
                } finally {
                    requestsInFlight.decrementAndGet();
                }
            }
        } catch (PeerClosedException e) {
            LOG.trace("store: {} disconnected", remote);
        } catch (IOException e) {
            if (!closed) {
                LOG.debug("store: connection from {} ended: {}", remote, e.toString());
            }
        } finally {
            release(c);
        }
    }

    /**
     * The challenge-response (see {@link TokenProofs}), all of it within the handshake timeout counted from
     * the accept, however slowly its bytes come; true when the client proved the token and was admitted.
     */
    private boolean handshake(Connection c, InputStream in, OutputStream out, SocketAddress remote)
            throws IOException {
        long deadline = c.acceptedAt + limits.handshakeTimeout().toNanos();
        BooleanSupplier waiting = () -> !closed && System.nanoTime() - deadline < 0;
        long frameTimeout = limits.handshakeTimeout().toNanos();
        try {
            byte[] clientNonce = checkHello(new Fields(StoreProtocol.readFrame(in, MAX_HANDSHAKE_FRAME, waiting,
                    frameTimeout, deadline)));
            byte[] serverNonce = TokenProofs.nonce();
            StoreProtocol.writeFrame(out, new Body(CHALLENGE).string(serverNonce)
                    .string(TokenProofs.server(token, clientNonce, serverNonce)).bytes());
            Fields proof = new Fields(StoreProtocol.readFrame(in, MAX_HANDSHAKE_FRAME, waiting, frameTimeout,
                    deadline));
            byte[] presented = checkProof(proof);
            if (!TokenProofs.matches(TokenProofs.client(token, clientNonce, serverNonce), presented)) {
                throw new Refusal("wrong token");
            }
        } catch (Refusal | ProtocolException e) { // a bad field (a refusal) or a bad frame
            String why = e.getMessage();
            refusals.note("refused " + remote + ": " + why);
            StoreProtocol.writeFrame(out, error(REFUSED, why));
            return false;
        } catch (SocketTimeoutException e) {
            if (!closed) {
                refusals.note("refused " + remote + ": no complete handshake within "
                        + limits.handshakeTimeout().toMillis() + " ms");
            }
            return false;
        } catch (PeerClosedException e) {
            LOG.trace("store: {} hung up during the handshake", remote);
            return false;
        }
        boolean full;
        synchronized (admission) {
            if (!removeUnauthenticated(c)) {
                return false; // closed to make room just now
            }
            full = authenticatedCount >= limits.maxConnections();
            if (!full) {
                authenticatedCount++;
                c.authenticated = true;
            }
        }
        if (full) {
            String why = "too many connections (limit " + limits.maxConnections() + ")";
            refusals.note("refused " + remote + ": " + why);
            StoreProtocol.writeFrame(out, error(BUSY, why));
            return false;
        }
        StoreProtocol.writeFrame(out, new Body(OK).i32(limits.maxKeyBytes()).i32(limits.maxValueBytes())
                .i32(limits.maxKeysPerRequest()).i64(limits.idleTimeout().toMillis()).i64(instance).bytes());
        LOG.trace("store: {} authenticated", remote);
        return true;
    }

    /** The client's nonce when the hello carries our magic and version; a {@link Refusal} saying why not. */
    private static byte[] checkHello(Fields f) throws Refusal {
        try {
            if (f.u8() != HELLO || f.i32() != MAGIC) {
                throw new Refusal("not a usp4j store client");
            }
            short version = f.i16();
            if (version != VERSION) {
                throw new Refusal("protocol version " + version + " is not supported (this store speaks " + VERSION
                        + "; every rank must run the same usp4j)");
            }
            byte[] nonce = f.stringBytes(TokenProofs.NONCE_BYTES, "nonce");
            f.end();
            if (nonce.length != TokenProofs.NONCE_BYTES) {
                throw new Refusal("not a usp4j store client (a nonce of " + nonce.length + " bytes)");
            }
            return nonce;
        } catch (ProtocolException e) {
            throw new Refusal("not a usp4j store client (" + e.getMessage() + ")");
        }
    }

    /** The proof the client presents, or a {@link Refusal} when the frame is not one. */
    private static byte[] checkProof(Fields f) throws Refusal {
        try {
            if (f.u8() != PROOF) {
                throw new Refusal("not a usp4j store client");
            }
            byte[] presented = f.stringBytes(TokenProofs.PROOF_BYTES, "proof");
            f.end();
            return presented;
        } catch (ProtocolException e) {
            throw new Refusal("not a usp4j store client (" + e.getMessage() + ")");
        }
    }

    /** Why a handshake is refused; the client is told. */
    private static final class Refusal extends Exception {
        private static final long serialVersionUID = 1L;

        Refusal(String message) {
            super(message, null, false, false);
        }
    }

    // ---- requests ----

    /** A request the store cannot fulfil (full, not a number); answered with an error, the connection stays. */
    private static final class RequestException extends Exception {
        private static final long serialVersionUID = 1L;

        RequestException(String message) {
            super(message, null, false, false);
        }
    }

    private byte[] handle(Fields f) throws ProtocolException, RequestException, IOException {
        byte op = f.u8();
        int maxKey = limits.maxKeyBytes();
        switch (op) {
            case SET -> {
                String key = f.string(maxKey, "key");
                byte[] value = f.value(limits.maxValueBytes());
                f.end();
                put(key, value);
                return new Body(OK).bytes();
            }
            case GET -> {
                String key = f.string(maxKey, "key");
                long timeout = waitMillis(f.i64());
                f.end();
                byte[] value = await(List.of(key), timeout) ? get(key) : null;
                return value == null ? new Body(TIMEOUT).bytes() : new Body(VALUE).value(value).bytes();
            }
            case ADD -> {
                String key = f.string(maxKey, "key");
                long delta = f.i64();
                f.end();
                return new Body(NUMBER).i64(add(key, delta)).bytes();
            }
            case WAIT -> {
                List<String> keys = f.strings(limits.maxKeysPerRequest(), maxKey, "key");
                long timeout = waitMillis(f.i64());
                f.end();
                if (await(keys, timeout)) {
                    return new Body(OK).bytes();
                }
                return new Body(TIMEOUT).strings(missing(keys)).bytes();
            }
            case CHECK -> {
                List<String> keys = f.strings(limits.maxKeysPerRequest(), maxKey, "key");
                f.end();
                return new Body(KEYS).strings(missing(keys)).bytes();
            }
            case DELETE -> {
                String key = f.string(maxKey, "key");
                f.end();
                return new Body(NUMBER).i64(delete(key) ? 1 : 0).bytes();
            }
            case DELETE_PREFIX -> {
                String prefix = f.string(maxKey, "key");
                f.end();
                return new Body(NUMBER).i64(deletePrefix(prefix)).bytes();
            }
            default -> throw new ProtocolException("unknown operation " + op);
        }
    }

    private static long waitMillis(long millis) throws ProtocolException {
        if (millis < 0 || millis > MAX_WAIT_MILLIS) {
            throw new ProtocolException("wait of " + millis + " ms refused (limit " + MAX_WAIT_MILLIS + " ms)");
        }
        return millis;
    }

    private void put(String key, byte[] value) throws RequestException {
        lock.lock();
        try {
            store(key, value);
        } finally {
            lock.unlock();
        }
    }

    /** Stores under the lock, keeping the byte count and waking waiters; refuses what would overfill. */
    private void store(String key, byte[] value) throws RequestException {
        byte[] old = entries.get(key);
        long keyBytes = key.getBytes(StandardCharsets.UTF_8).length;
        long after = storedBytes + value.length + (old == null ? keyBytes : -old.length);
        if (after > limits.maxStoreBytes()) {
            throw new RequestException("the store is full: storing '" + StoreProtocol.shorten(key) + "' ("
                    + value.length + " bytes) would exceed its limit of " + limits.maxStoreBytes() + " bytes");
        }
        entries.put(key, value);
        storedBytes = after;
        changed.signalAll();
    }

    private byte[] get(String key) {
        lock.lock();
        try {
            return entries.get(key);
        } finally {
            lock.unlock();
        }
    }

    private long add(String key, long delta) throws RequestException {
        lock.lock();
        try {
            byte[] old = entries.get(key);
            long current = 0;
            if (old != null) {
                try {
                    current = Long.parseLong(new String(old, StandardCharsets.US_ASCII));
                } catch (NumberFormatException e) {
                    throw new RequestException("cannot add to '" + StoreProtocol.shorten(key)
                            + "': its value is not a decimal counter");
                }
            }
            long next;
            try {
                next = Math.addExact(current, delta);
            } catch (ArithmeticException e) {
                throw new RequestException("counter '" + StoreProtocol.shorten(key) + "' would overflow: "
                        + current + " + " + delta);
            }
            store(key, Long.toString(next).getBytes(StandardCharsets.US_ASCII));
            return next;
        } finally {
            lock.unlock();
        }
    }

    /** Parks until every key is present (true) or the time is up (false); a shutdown ends it with an error. */
    private boolean await(List<String> keys, long timeoutMillis) throws IOException {
        long remaining = TimeUnit.MILLISECONDS.toNanos(timeoutMillis);
        lock.lock();
        try {
            while (true) {
                if (closed) {
                    throw new IOException("the store is shutting down");
                }
                if (entries.keySet().containsAll(keys)) {
                    return true;
                }
                if (remaining <= 0) {
                    return false;
                }
                try {
                    remaining = changed.awaitNanos(remaining);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted", e);
                }
            }
        } finally {
            lock.unlock();
        }
    }

    private List<String> missing(List<String> keys) {
        lock.lock();
        try {
            List<String> missing = new ArrayList<>();
            for (String k : keys) {
                if (!entries.containsKey(k)) {
                    missing.add(k);
                }
            }
            return missing;
        } finally {
            lock.unlock();
        }
    }

    private boolean delete(String key) {
        lock.lock();
        try {
            byte[] old = entries.remove(key);
            if (old == null) {
                return false;
            }
            storedBytes -= old.length + key.getBytes(StandardCharsets.UTF_8).length;
            return true;
        } finally {
            lock.unlock();
        }
    }

    private int deletePrefix(String prefix) {
        lock.lock();
        try {
            // keys sharing a prefix are contiguous in sorted order, starting at the prefix itself
            var it = entries.tailMap(prefix, true).entrySet().iterator();
            int n = 0;
            while (it.hasNext()) {
                var e = it.next();
                if (!e.getKey().startsWith(prefix)) {
                    break;
                }
                storedBytes -= e.getValue().length + e.getKey().getBytes(StandardCharsets.UTF_8).length;
                it.remove();
                n++;
            }
            return n;
        } finally {
            lock.unlock();
        }
    }

    // ---- helpers ----

    private static byte[] error(byte status, String message) {
        return new Body(status).string(StoreProtocol.truncatedMessage(message)).bytes();
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
