package org.usp4j.comm;

import java.util.EnumMap;
import java.util.Map;
import java.util.concurrent.atomic.AtomicLongArray;

/**
 * Bytes one rank has sent, per kind of traffic. A rank's copies to itself are never counted. Every
 * communicator of a rank (the world and its sub-groups) adds into the same counter.
 */
public final class TrafficCounter {

    private final AtomicLongArray bytes = new AtomicLongArray(TrafficKind.values().length);

    public void add(TrafficKind kind, long byteCount) {
        if (byteCount < 0) {
            throw new IllegalArgumentException("negative byte count " + byteCount);
        }
        bytes.addAndGet(kind.ordinal(), byteCount);
    }

    public long bytesSent(TrafficKind kind) {
        return bytes.get(kind.ordinal());
    }

    public long totalBytesSent() {
        long total = 0;
        for (TrafficKind kind : TrafficKind.values()) {
            total += bytesSent(kind);
        }
        return total;
    }

    public void reset() {
        for (int i = 0; i < bytes.length(); i++) {
            bytes.set(i, 0);
        }
    }

    public Map<TrafficKind, Long> snapshot() {
        Map<TrafficKind, Long> map = new EnumMap<>(TrafficKind.class);
        for (TrafficKind kind : TrafficKind.values()) {
            map.put(kind, bytesSent(kind));
        }
        return map;
    }

    /** The bytes sent per kind since {@code earlier}, a {@link #snapshot()} of this counter. */
    public Map<TrafficKind, Long> since(Map<TrafficKind, Long> earlier) {
        Map<TrafficKind, Long> map = new EnumMap<>(TrafficKind.class);
        for (TrafficKind kind : TrafficKind.values()) {
            map.put(kind, bytesSent(kind) - earlier.getOrDefault(kind, 0L));
        }
        return map;
    }

    @Override
    public String toString() {
        return snapshot().toString();
    }
}
