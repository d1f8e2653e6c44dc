package org.usp4j.cpu;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.atomic.AtomicLong;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The machine's measured float32 FMA throughput: a vectorised loop of fused multiply-adds with enough
 * independent accumulators to hide the FMA latency (latency 4-5 cycles x 2 FMA pipes needs at least 8-10
 * chains in flight), run on several threads at once. It is the denominator benchmarks use to report
 * the attention kernel as a fraction of peak. Each FMA lane counts as 2 FLOPs.
 */
public final class FmaPeak {

    private static final VectorSpecies<Float> SPECIES = VectorWidth.SPECIES;
    private static final int CHAINS = 12;
    private static final long CHUNK = 1L << 20; // FMA loop trips between clock reads

    private FmaPeak() {
    }

    /** Peak GFLOP/s on all available processors, measured for about a second. */
    public static double measure() {
        return measure(Runtime.getRuntime().availableProcessors(), 200);
    }

    /**
     * Peak GFLOP/s with {@code threads} threads each running the FMA loop for about {@code millis}
     * milliseconds after a warm-up; the best of five rounds is returned (other processes on the machine
     * can only make a round slower).
     */
    public static double measure(int threads, long millis) {
        if (threads < 1 || millis < 1) {
            throw new IllegalArgumentException("threads (" + threads + ") and millis (" + millis + ") must be >= 1");
        }
        runRound(threads, Math.max(50, millis / 4)); // lets C2 compile the loop
        double best = 0;
        for (int round = 0; round < 5; round++) {
            best = Math.max(best, runRound(threads, millis));
        }
        return best;
    }

    /** FLOPs per loop trip: CHAINS vector FMAs of 2 FLOPs per lane. Public for the JMH suite. */
    public static long flopsPerTrip() {
        return flopsPerTrip(SPECIES.vectorBitSize());
    }

    /** FLOPs per loop trip of the loop compiled for {@code vectorBits}-bit vectors. */
    public static long flopsPerTrip(int vectorBits) {
        return 2L * CHAINS * (vectorBits / Float.SIZE);
    }

    /** The vector width the loop runs with: that of the CPU kernel ({@code -Dusp4j.cpu.vectorBits}). */
    public static int vectorBitSize() {
        return SPECIES.vectorBitSize();
    }

    private static double runRound(int threads, long millis) {
        CyclicBarrier start = new CyclicBarrier(threads);
        CountDownLatch done = new CountDownLatch(threads);
        AtomicLong trips = new AtomicLong();
        AtomicLong sink = new AtomicLong();
        long[] window = new long[2];
        Thread[] workers = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            int id = t;
            workers[t] = new Thread(() -> {
                try {
                    start.await();
                    long t0 = System.nanoTime();
                    long deadline = t0 + millis * 1_000_000L;
                    long n = 0;
                    float acc = 0;
                    while (System.nanoTime() < deadline) {
                        acc += fmaLoop(CHUNK, 1f + id * 1e-7f);
                        n += CHUNK;
                    }
                    long t1 = System.nanoTime();
                    trips.addAndGet(n);
                    sink.addAndGet(Float.floatToRawIntBits(acc));
                    synchronized (window) {
                        window[0] = window[0] == 0 ? t0 : Math.min(window[0], t0);
                        window[1] = Math.max(window[1], t1);
                    }
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                } finally {
                    done.countDown();
                }
            }, "usp4j-fma-peak-" + t);
            workers[t].setDaemon(true);
            workers[t].start();
        }
        try {
            done.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while measuring the FMA peak", e);
        }
        if (sink.get() == 42) { // keeps the accumulators alive
            System.out.print("");
        }
        double seconds = (window[1] - window[0]) * 1e-9;
        return trips.get() * (double) flopsPerTrip() / seconds * 1e-9;
    }

    /**
     * {@code trips} rounds of CHAINS independent FMA chains. acc = acc * a + b with a just below 1 keeps
     * every chain bounded (it converges to b / (1 - a) = 1), so no denormals or infinities slow it down.
     * Public so that the JMH suite times this very loop.
     */
    public static float fmaLoop(long trips, float seed) {
        FloatVector a = FloatVector.broadcast(SPECIES, 0.999999f);
        FloatVector b = FloatVector.broadcast(SPECIES, 1e-6f);
        FloatVector c0 = FloatVector.broadcast(SPECIES, seed);
        FloatVector c1 = c0.add(1f), c2 = c0.add(2f), c3 = c0.add(3f), c4 = c0.add(4f), c5 = c0.add(5f);
        FloatVector c6 = c0.add(6f), c7 = c0.add(7f), c8 = c0.add(8f), c9 = c0.add(9f), c10 = c0.add(10f);
        FloatVector c11 = c0.add(11f);
        for (long i = 0; i < trips; i++) {
            c0 = c0.fma(a, b);
            c1 = c1.fma(a, b);
            c2 = c2.fma(a, b);
            c3 = c3.fma(a, b);
            c4 = c4.fma(a, b);
            c5 = c5.fma(a, b);
            c6 = c6.fma(a, b);
            c7 = c7.fma(a, b);
            c8 = c8.fma(a, b);
            c9 = c9.fma(a, b);
            c10 = c10.fma(a, b);
            c11 = c11.fma(a, b);
        }
        FloatVector s = c0.add(c1).add(c2).add(c3).add(c4).add(c5).add(c6).add(c7).add(c8).add(c9).add(c10).add(c11);
        return s.reduceLanes(jdk.incubator.vector.VectorOperators.ADD);
    }

    /** Prints the single-thread and all-core peak. */
    public static void main(String[] args) {
        int cores = Runtime.getRuntime().availableProcessors();
        System.out.printf("FMA peak (%d-lane float vectors): 1 thread %.1f GFLOP/s, %d threads %.1f GFLOP/s%n",
                SPECIES.length(), measure(1, 200), cores, measure(cores, 200));
    }
}
