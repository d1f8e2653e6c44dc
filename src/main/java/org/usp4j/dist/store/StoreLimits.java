package org.usp4j.dist.store;

import java.time.Duration;
import java.util.Objects;

/**
 * Bounds on what a store accepts, so that no length read from the network is trusted before it is
 * checked: every frame is length-prefixed and refused when longer than {@link #maxFrameBytes()}.
 *
 * @param maxKeyBytes       longest key, in UTF-8 bytes (at most 65535: keys travel with a 16-bit length)
 * @param maxValueBytes     longest value
 * @param maxKeysPerRequest most keys in one wait or check
 * @param maxStoreBytes     most bytes (keys plus values) the server holds in total
 * @param maxConnections    most clients connected at once, authenticated or not
 * @param handshakeTimeout  how long a new connection may take to present its token
 * @param frameTimeout      how long the rest of a frame may take once its first byte arrived
 */
public record StoreLimits(int maxKeyBytes, int maxValueBytes, int maxKeysPerRequest, long maxStoreBytes,
                          int maxConnections, Duration handshakeTimeout, Duration frameTimeout) {

    /** 1 KiB keys, 1 MiB values, 1024 keys a request, 256 MiB in all, 4096 connections, 10 s / 30 s. */
    public static final StoreLimits DEFAULT = new StoreLimits(1024, 1 << 20, 1024, 256L << 20, 4096,
            Duration.ofSeconds(10), Duration.ofSeconds(30));

    /** Frames carry at most this much besides keys and values (op, status, lengths, numbers). */
    static final int FRAME_OVERHEAD = 64;

    public StoreLimits {
        requireRange("maxKeyBytes", maxKeyBytes, 1, 65_535);
        requireRange("maxValueBytes", maxValueBytes, 0, 256 << 20);
        requireRange("maxKeysPerRequest", maxKeysPerRequest, 1, 65_535);
        requireRange("maxConnections", maxConnections, 1, 1 << 20);
        if (maxStoreBytes < 1) {
            throw new IllegalArgumentException("maxStoreBytes must be positive, got " + maxStoreBytes);
        }
        requirePositive("handshakeTimeout", handshakeTimeout);
        requirePositive("frameTimeout", frameTimeout);
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
                timeout, frameTimeout);
    }

    public StoreLimits withMaxValueBytes(int bytes) {
        return new StoreLimits(maxKeyBytes, bytes, maxKeysPerRequest, maxStoreBytes, maxConnections,
                handshakeTimeout, frameTimeout);
    }

    public StoreLimits withMaxStoreBytes(long bytes) {
        return new StoreLimits(maxKeyBytes, maxValueBytes, maxKeysPerRequest, bytes, maxConnections,
                handshakeTimeout, frameTimeout);
    }

    public StoreLimits withMaxConnections(int connections) {
        return new StoreLimits(maxKeyBytes, maxValueBytes, maxKeysPerRequest, maxStoreBytes, connections,
                handshakeTimeout, frameTimeout);
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
