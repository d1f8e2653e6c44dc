package org.usp4j.launch.store;

import java.time.Duration;
import java.util.Objects;

/**
 * Bounds on what a store accepts, so that no length read from the network is trusted before it is
 * checked (every frame is length-prefixed and refused when longer than {@link #maxFrameBytes()}) and no
 * peer can hold the store's time or descriptors for long.
 *
 * <p>Connections that have not proven the token yet live in their own small pool: when it is full (in
 * all, or for one peer address), the oldest of them is closed to make room for the newcomer, so idle or
 * slow strangers can delay a rank by one retry at most, never lock it out. Authenticated connections
 * have a separate, larger limit that strangers cannot use up.
 *
 * @param maxKeyBytes               longest key, in UTF-8 bytes (at most 65535: keys travel with a 16-bit length)
 * @param maxValueBytes             longest value
 * @param maxKeysPerRequest         most keys in one wait or check
 * @param maxStoreBytes             most bytes (keys plus values) the server holds in total
 * @param maxConnections            most authenticated clients connected at once
 * @param maxUnauthenticated        most connections still in their handshake, in all
 * @param maxUnauthenticatedPerPeer most connections still in their handshake from one peer address
 * @param handshakeTimeout          how long a new connection has, in total, to complete the handshake
 * @param frameTimeout              how long a request frame may take, in total, once its first byte arrived
 * @param idleTimeout               how long an authenticated connection may go without a request before the
 *                                  server closes it (clients reconnect on their own before that)
 */
public record StoreLimits(int maxKeyBytes, int maxValueBytes, int maxKeysPerRequest, long maxStoreBytes,
                          int maxConnections, int maxUnauthenticated, int maxUnauthenticatedPerPeer,
                          Duration handshakeTimeout, Duration frameTimeout, Duration idleTimeout) {

    /**
     * 1 KiB keys, 1 MiB values, 1024 keys a request, 256 MiB in all, 4096 authenticated connections, 128 in
     * their handshake (64 per peer), 10 s per handshake, 30 s per frame, 2 min idle.
     */
    public static final StoreLimits DEFAULT = new StoreLimits(1024, 1 << 20, 1024, 256L << 20, 4096, 128, 64,
            Duration.ofSeconds(10), Duration.ofSeconds(30), Duration.ofMinutes(2));

    /** Frames carry at most this much besides keys and values (op, status, lengths, numbers). */
    static final int FRAME_OVERHEAD = 64;

    public StoreLimits {
        requireRange("maxKeyBytes", maxKeyBytes, 1, 65_535);
        requireRange("maxValueBytes", maxValueBytes, 0, 256 << 20);
        requireRange("maxKeysPerRequest", maxKeysPerRequest, 1, 65_535);
        requireRange("maxConnections", maxConnections, 1, 1 << 20);
        requireRange("maxUnauthenticated", maxUnauthenticated, 1, 1 << 16);
        requireRange("maxUnauthenticatedPerPeer", maxUnauthenticatedPerPeer, 1, maxUnauthenticated);
        if (maxStoreBytes < 1) {
            throw new IllegalArgumentException("maxStoreBytes must be positive, got " + maxStoreBytes);
        }
        requirePositive("handshakeTimeout", handshakeTimeout);
        requirePositive("frameTimeout", frameTimeout);
        requirePositive("idleTimeout", idleTimeout);
        // the largest frame must fit an int length prefix
        long frame = Math.max((long) maxValueBytes + maxKeyBytes, (long) maxKeysPerRequest * (2 + maxKeyBytes));
        if (frame + FRAME_OVERHEAD > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("limits allow frames of " + (frame + FRAME_OVERHEAD)
                    + " bytes, more than " + Integer.MAX_VALUE);
        }
    }

    /**
     * Longest frame either side sends or accepts: a key and a value, or a list of keys, or an error message,
     * plus overhead.
     */
    public int maxFrameBytes() {
        long keyList = (long) maxKeysPerRequest * (2 + maxKeyBytes);
        long largest = Math.max(Math.max((long) maxValueBytes + maxKeyBytes, keyList), StoreProtocol.MAX_MESSAGE_BYTES);
        return (int) (largest + FRAME_OVERHEAD);
    }

    public StoreLimits withHandshakeTimeout(Duration timeout) {
        return new StoreLimits(maxKeyBytes, maxValueBytes, maxKeysPerRequest, maxStoreBytes, maxConnections,
                maxUnauthenticated, maxUnauthenticatedPerPeer, timeout, frameTimeout, idleTimeout);
    }

    public StoreLimits withFrameTimeout(Duration timeout) {
        return new StoreLimits(maxKeyBytes, maxValueBytes, maxKeysPerRequest, maxStoreBytes, maxConnections,
                maxUnauthenticated, maxUnauthenticatedPerPeer, handshakeTimeout, timeout, idleTimeout);
    }

    public StoreLimits withIdleTimeout(Duration timeout) {
        return new StoreLimits(maxKeyBytes, maxValueBytes, maxKeysPerRequest, maxStoreBytes, maxConnections,
                maxUnauthenticated, maxUnauthenticatedPerPeer, handshakeTimeout, frameTimeout, timeout);
    }

    public StoreLimits withMaxValueBytes(int bytes) {
        return new StoreLimits(maxKeyBytes, bytes, maxKeysPerRequest, maxStoreBytes, maxConnections,
                maxUnauthenticated, maxUnauthenticatedPerPeer, handshakeTimeout, frameTimeout, idleTimeout);
    }

    public StoreLimits withMaxStoreBytes(long bytes) {
        return new StoreLimits(maxKeyBytes, maxValueBytes, maxKeysPerRequest, bytes, maxConnections,
                maxUnauthenticated, maxUnauthenticatedPerPeer, handshakeTimeout, frameTimeout, idleTimeout);
    }

    public StoreLimits withMaxConnections(int connections) {
        return new StoreLimits(maxKeyBytes, maxValueBytes, maxKeysPerRequest, maxStoreBytes, connections,
                maxUnauthenticated, maxUnauthenticatedPerPeer, handshakeTimeout, frameTimeout, idleTimeout);
    }

    /** Both handshake pools: {@code total} in all, {@code perPeer} from one address. */
    public StoreLimits withMaxUnauthenticated(int total, int perPeer) {
        return new StoreLimits(maxKeyBytes, maxValueBytes, maxKeysPerRequest, maxStoreBytes, maxConnections,
                total, perPeer, handshakeTimeout, frameTimeout, idleTimeout);
    }

    private static void requireRange(String name, long value, long min, long max) {
        if (value < min || value > max) {
            throw new IllegalArgumentException(name + " must be in [" + min + ", " + max + "], got " + value);
        }
    }

    private static void requirePositive(String name, Duration d) {
        Objects.requireNonNull(d, name);
        if (d.isNegative() || d.isZero()) {
            throw new IllegalArgumentException(name + " must be positive, got " + d);
        }
    }
}
