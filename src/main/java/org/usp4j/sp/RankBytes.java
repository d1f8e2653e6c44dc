package org.usp4j.sp;

import java.util.Collections;
import java.util.EnumMap;
import java.util.EnumSet;
import java.util.Map;
import java.util.Set;
import org.usp4j.comm.TrafficKind;

/**
 * Bytes one rank sends in one pass, per {@link TrafficKind}: what a strategy's cost model predicts and
 * what the communicators count, in one value so that the two compare with {@code equals}.
 */
public record RankBytes(Map<TrafficKind, Long> bytes) {

    public RankBytes {
        EnumMap<TrafficKind, Long> all = new EnumMap<>(TrafficKind.class);
        for (TrafficKind kind : TrafficKind.values()) {
            long n = bytes.getOrDefault(kind, 0L);
            if (n < 0) {
                throw new IllegalArgumentException("negative byte count " + n + " for " + kind.jsonName());
            }
            all.put(kind, n);
        }
        bytes = Collections.unmodifiableMap(all);
    }

    public static RankBytes none() {
        return new RankBytes(Map.of());
    }

    public static RankBytes of(TrafficKind kind, long n) {
        return new RankBytes(Map.of(kind, n));
    }

    public long get(TrafficKind kind) {
        return bytes.get(kind);
    }

    public long total() {
        long sum = 0;
        for (long n : bytes.values()) {
            sum = Math.addExact(sum, n);
        }
        return sum;
    }

    public RankBytes plus(RankBytes other) {
        EnumMap<TrafficKind, Long> sum = new EnumMap<>(TrafficKind.class);
        for (TrafficKind kind : TrafficKind.values()) {
            sum.put(kind, Math.addExact(get(kind), other.get(kind)));
        }
        return new RankBytes(sum);
    }

    /** The kinds with bytes in them. */
    public Set<TrafficKind> used() {
        Set<TrafficKind> used = EnumSet.noneOf(TrafficKind.class);
        bytes.forEach((kind, n) -> {
            if (n > 0) {
                used.add(kind);
            }
        });
        return used;
    }

    @Override
    public String toString() {
        StringBuilder s = new StringBuilder();
        for (TrafficKind kind : TrafficKind.values()) {
            if (kind.alwaysReported() || get(kind) > 0) {
                s.append(s.isEmpty() ? "" : ", ").append(kind.jsonName()).append(' ').append(get(kind));
            }
        }
        return s.toString();
    }
}
