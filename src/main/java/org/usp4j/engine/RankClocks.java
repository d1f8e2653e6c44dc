package org.usp4j.engine;

import org.usp4j.cuda.CudaEvent;
import org.usp4j.gpu.CudaBackend;

/**
 * Start and stop marks of every hosted rank of one distributed call (indexed by position among the
 * hosted ranks); the call took from the earliest start to the latest stop. On the host the marks are {@link System#nanoTime()}; on GPU ranks they are CUDA
 * timing events recorded on each rank's stream, so the span is what the device did, host launch gaps
 * included, without the host's synchronisation around it.
 */
abstract sealed class RankClocks implements AutoCloseable {

    /** Marks the start of {@code rank}'s work (on its own thread). */
    abstract void start(int rank);

    /** Marks the end of {@code rank}'s work, after everything it enqueued. */
    abstract void stop(int rank);

    /** Seconds from the earliest start to the latest stop; call after every rank stopped and synchronised. */
    abstract double spanSeconds();

    /** Whether the marks are device events (stop before synchronizing) rather than host times (after). */
    abstract boolean onDevice();

    /** Seconds from {@code rank}'s start to its stop. */
    abstract double seconds(int rank);

    @Override
    public void close() {
    }

    static RankClocks host(int ranks) {
        return new Host(ranks);
    }

    /** CUDA event clocks on each rank's stream. */
    static RankClocks cuda(CudaBackend[] backends) {
        return new Cuda(backends);
    }

    static final class Host extends RankClocks {
        private final long[] starts;
        private final long[] stops;

        Host(int ranks) {
            starts = new long[ranks];
            stops = new long[ranks];
        }

        @Override
        void start(int rank) {
            starts[rank] = System.nanoTime();
        }

        @Override
        void stop(int rank) {
            stops[rank] = System.nanoTime();
        }

        @Override
        double spanSeconds() {
            long first = Long.MAX_VALUE;
            long last = Long.MIN_VALUE;
            for (int r = 0; r < starts.length; r++) {
                first = Math.min(first, starts[r]);
                last = Math.max(last, stops[r]);
            }
            return (last - first) * 1e-9;
        }

        @Override
        boolean onDevice() {
            return false;
        }

        @Override
        double seconds(int rank) {
            return (stops[rank] - starts[rank]) * 1e-9;
        }
    }

    static final class Cuda extends RankClocks {
        private final CudaBackend[] backends;
        private final CudaEvent[] starts;
        private final CudaEvent[] stops;

        Cuda(CudaBackend[] backends) {
            this.backends = backends.clone();
            this.starts = new CudaEvent[backends.length];
            this.stops = new CudaEvent[backends.length];
            try {
                for (int r = 0; r < backends.length; r++) {
                    starts[r] = CudaEvent.create(true);
                    stops[r] = CudaEvent.create(true);
                }
            } catch (RuntimeException | Error e) {
                close();
                throw e;
            }
        }

        @Override
        void start(int rank) {
            starts[rank].record(backends[rank].stream());
        }

        @Override
        void stop(int rank) {
            stops[rank].record(backends[rank].stream());
        }

        @Override
        double spanSeconds() {
            // Elapsed times are relative to rank 0's start; other ranks may start slightly earlier.
            double first = Double.MAX_VALUE;
            double last = -Double.MAX_VALUE;
            for (int r = 0; r < starts.length; r++) {
                stops[r].synchronize();
                first = Math.min(first, CudaEvent.elapsedMillis(starts[0], starts[r]));
                last = Math.max(last, CudaEvent.elapsedMillis(starts[0], stops[r]));
            }
            return (last - first) * 1e-3;
        }

        @Override
        boolean onDevice() {
            return true;
        }

        @Override
        double seconds(int rank) {
            stops[rank].synchronize();
            return CudaEvent.elapsedMillis(starts[rank], stops[rank]) * 1e-3;
        }

        @Override
        public void close() {
            for (CudaEvent[] events : new CudaEvent[][] {starts, stops}) {
                for (CudaEvent e : events) {
                    if (e != null) {
                        e.close();
                    }
                }
            }
        }
    }
}
