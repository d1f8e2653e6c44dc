package org.usp4j.bench;

import java.util.List;

/** Summaries of repeated timings. */
public final class Timings {

    private Timings() {
    }

    /** The median (the mean of the middle two for an even count). */
    public static double median(List<Double> values) {
        if (values.isEmpty()) {
            throw new IllegalArgumentException("no timings to take the median of");
        }
        List<Double> sorted = values.stream().sorted().toList();
        int n = sorted.size();
        return n % 2 == 1 ? sorted.get(n / 2) : (sorted.get(n / 2 - 1) + sorted.get(n / 2)) / 2;
    }
}
