package org.usp4j.plan;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * A long-tailed sequence-length distribution for benchmarks: lognormal, ln(length) ~ N(mu, sigma^2),
 * rounded and clipped to [min, max] tokens. Batches are drawn from a seed until they hold a token budget.
 */
public record LengthDistribution(double mu, double sigma, long min, long max) {

    public LengthDistribution {
        if (!(sigma > 0) || min < 1 || max < min) {
            throw new IllegalArgumentException("need sigma > 0 and 1 <= min <= max, got sigma=" + sigma + " min=" + min
                    + " max=" + max);
        }
    }

    /** Lengths drawn until their sum reaches {@code tokens} (the last one may pass it). */
    public long[] batch(long tokens, long seed) {
        Random random = new Random(seed);
        List<Long> drawn = new ArrayList<>();
        long sum = 0;
        while (sum < tokens) {
            long s = Math.clamp(Math.round(Math.exp(mu + sigma * random.nextGaussian())), min, max);
            drawn.add(s);
            sum += s;
        }
        return drawn.stream().mapToLong(Long::longValue).toArray();
    }

    /** The median length before clipping, e^mu. */
    public double median() {
        return Math.exp(mu);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "lognormal(mu=%.1f, sigma=%.1f) in [%d, %d]", mu, sigma, min, max);
    }
}
