package org.usp4j.sp;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/** The registry of {@link RingAlgorithm}s by name. A new algorithm is one line here. */
public final class RingAlgorithms {

    private static final Map<String, RingAlgorithm> BY_NAME = new LinkedHashMap<>();

    static {
        register(RingAttention.ALGORITHM);
        register(AllGatherAttention.ALGORITHM);
        register(TokenRingAttention.ALGORITHM);
        register(LightSeqAttention.ALGORITHM);
    }

    private RingAlgorithms() {
    }

    /** The default: K/V passed around the ring. */
    public static RingAlgorithm defaultAlgorithm() {
        return RingAttention.ALGORITHM;
    }

    /** The algorithm of this name (any case); an unknown name is refused with the known ones. */
    public static RingAlgorithm named(String name) {
        RingAlgorithm algorithm = BY_NAME.get(name.toLowerCase(Locale.ROOT));
        if (algorithm == null) {
            throw new IllegalArgumentException("unknown ring algorithm '" + name + "' (known: "
                    + String.join(", ", names()) + ")");
        }
        return algorithm;
    }

    /** Every registered name, in registration order. */
    public static List<String> names() {
        return List.copyOf(BY_NAME.keySet());
    }

    /** The names of the algorithms that support packed sequences, as "ring, allgather". */
    public static String packedSequenceNames() {
        return String.join(", ", BY_NAME.values().stream().filter(RingAlgorithm::supportsPackedSequences)
                .map(RingAlgorithm::name).toList());
    }

    private static void register(RingAlgorithm algorithm) {
        if (BY_NAME.putIfAbsent(algorithm.name(), algorithm) != null) {
            throw new IllegalStateException("two ring algorithms are named " + algorithm.name());
        }
    }
}
