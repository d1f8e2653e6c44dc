package org.usp4j.api.internal;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;
import java.util.concurrent.CompletionException;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.api.AttentionLayer;
import org.usp4j.api.AttentionOptions;
import org.usp4j.api.BackendKind;
import org.usp4j.api.InProcessWorld;
import org.usp4j.api.LinearAttentionLayer;
import org.usp4j.api.LinearAttentionOptions;
import org.usp4j.api.Mesh;
import org.usp4j.api.RankContext;
import org.usp4j.api.RankFunction;
import org.usp4j.backend.Backend;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.local.LocalTransport;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.cuda.Cuda;

/**
 * An {@link InProcessWorld} over a {@link LocalWorld}: P ranks as threads, each with its backend. A rank's
 * context and layers act only on the thread that runs that rank's function, while it runs.
 */
final class LocalRanksWorld implements InProcessWorld {

    private static final Logger LOG = LogManager.getLogger(LocalRanksWorld.class);

    private final BackendKind kind;
    private final int device;
    private final Backend[] backends;
    private final LocalWorld world;
    private final Rank[] ranks;
    private volatile boolean closed;

    /** Takes ownership of {@code backends} (closes them if the world cannot be made). */
    LocalRanksWorld(BackendKind kind, int device, Backend[] backends, Duration timeout) {
        this.kind = kind;
        this.device = device;
        this.backends = backends;
        try {
            this.world = new LocalWorld(backends.length, timeout, r -> LocalTransport.of(backends[r]));
        } catch (RuntimeException | Error e) {
            closeBackends();
            throw e;
        }
        this.ranks = new Rank[backends.length];
        for (int r = 0; r < ranks.length; r++) {
            ranks[r] = new Rank(r, backends[r], world.communicator(r));
        }
        LOG.debug("in-process world of {} {} ranks", ranks.length, kind);
    }

    @Override
    public int size() {
        return ranks.length;
    }

    @Override
    public BackendKind backend() {
        return kind;
    }

    @Override
    public synchronized <T> List<T> run(RankFunction<T> function) {
        Objects.requireNonNull(function, "function");
        if (closed) {
            throw new IllegalStateException("this in-process world is closed");
        }
        try {
            return world.run((r, comm) -> {
                Rank rank = ranks[r];
                if (kind == BackendKind.CUDA) {
                    Cuda.setDevice(device);
                }
                rank.thread = Thread.currentThread();
                try {
                    return function.apply(rank);
                } catch (RuntimeException | Error e) {
                    throw e;
                } catch (Exception e) {
                    throw new CompletionException("rank " + r + " failed: " + e, e);
                } finally {
                    rank.thread = null;
                }
            });
        } catch (RuntimeException e) {
            throw Failures.translate(e);
        }
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            for (Rank rank : ranks) {
                rank.closeLayers();
            }
            world.close();
        } finally {
            closeBackends();
        }
    }

    @Override
    public String toString() {
        return "InProcessWorld[" + ranks.length + " " + kind + " ranks" + (closed ? ", closed]" : "]");
    }

    /** Bytes held by the CPU ranks' scratch and saved state (0 once every layer is closed); for leak tests. */
    long liveScratchBytes() {
        long total = 0;
        for (Backend b : backends) {
            if (b instanceof org.usp4j.cpu.CpuBackend cpu) {
                total += cpu.liveBytes();
            }
        }
        return total;
    }

    private void closeBackends() {
        for (Backend b : backends) {
            b.close();
        }
    }

    /** One rank: its context for the rank function and the site of its layers. */
    private final class Rank implements RankContext, RankSite {
        private final int rank;
        private final Backend backend;
        private final Communicator comm;
        private final CallerTensors.Placement placement;
        private final List<UspLayer> layers = new ArrayList<>();
        private volatile Thread thread;

        Rank(int rank, Backend backend, Communicator comm) {
            this.rank = rank;
            this.backend = backend;
            this.comm = comm;
            this.placement = kind == BackendKind.CPU ? CallerTensors.Placement.cpu(true)
                    : CallerTensors.Placement.cuda(device);
        }

        @Override
        public int rank() {
            return rank;
        }

        @Override
        public int worldSize() {
            return ranks.length;
        }

        @Override
        public BackendKind backend() {
            return kind;
        }

        @Override
        public OptionalInt cudaDevice() {
            return kind == BackendKind.CUDA ? OptionalInt.of(device) : OptionalInt.empty();
        }

        @Override
        public AttentionLayer newAttention(Mesh mesh, AttentionOptions options) {
            enter();
            return track(UspLayer.create(mesh, options, this, comm));
        }

        @Override
        public LinearAttentionLayer newLinearAttention(Mesh mesh, LinearAttentionOptions options) {
            enter();
            LinearLayer layer = LinearLayer.create(mesh, options, this, comm);
            track(layer.usp());
            return layer;
        }

        private UspLayer track(UspLayer layer) {
            synchronized (layers) {
                layers.add(layer);
            }
            return layer;
        }

        @Override
        public Backend computeBackend() {
            return backend;
        }

        @Override
        public CallerTensors.Placement placement() {
            return placement;
        }

        @Override
        public void enter() {
            if (closed) {
                throw new IllegalStateException("the in-process world of rank " + rank + " is closed");
            }
            if (thread != Thread.currentThread()) {
                throw new IllegalStateException("rank " + rank + "'s context and layers act only inside"
                        + " InProcessWorld.run, on the thread running rank " + rank + "'s function (called from "
                        + Thread.currentThread().getName() + ")");
            }
        }

        @Override
        public boolean synchronousCalls() {
            return kind == BackendKind.CUDA;
        }

        @Override
        public void closed(UspLayer layer) {
            synchronized (layers) {
                layers.remove(layer);
            }
        }

        void closeLayers() {
            List<UspLayer> open;
            synchronized (layers) {
                open = List.copyOf(layers);
            }
            open.forEach(UspLayer::close);
        }

        @Override
        public String toString() {
            return "RankContext[rank " + rank + " of " + ranks.length + ", " + kind + "]";
        }
    }
}
