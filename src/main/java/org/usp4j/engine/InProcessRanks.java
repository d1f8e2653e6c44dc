package org.usp4j.engine;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.function.IntFunction;
import java.util.stream.IntStream;
import org.usp4j.backend.Backend;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.local.LocalTransport;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.gpu.CudaBackend;
import org.usp4j.tensor.Tensor;

/**
 * Every rank of a world in this process, one thread each over a {@link LocalWorld}: CPU ranks, or device
 * ranks on one GPU (whose backends bring their own transport). Owns the backends {@code backendPerRank}
 * makes and the world, and closes them. Gathering happens on the caller's thread, so results may go
 * into a confined arena.
 */
public final class InProcessRanks implements Ranks {

    private final Backend[] backends;
    private final LocalWorld world;
    private final int[] hosted;
    private boolean closed;

    public InProcessRanks(int size, IntFunction<Backend> backendPerRank, Duration timeout) {
        Objects.requireNonNull(backendPerRank, "backendPerRank");
        Objects.requireNonNull(timeout, "timeout");
        if (size < 1) {
            throw new IllegalArgumentException("a world needs at least one rank, got " + size);
        }
        this.backends = new Backend[size];
        LocalWorld w = null;
        try {
            for (int r = 0; r < size; r++) {
                backends[r] = Objects.requireNonNull(backendPerRank.apply(r), "backend of rank " + r);
            }
            w = new LocalWorld(size, timeout, rank -> LocalTransport.of(backends[rank]));
        } catch (RuntimeException | Error e) {
            closeBackends();
            throw e;
        }
        this.world = w;
        this.hosted = IntStream.range(0, size).toArray();
    }

    @Override
    public int size() {
        return backends.length;
    }

    @Override
    public int[] hosted() {
        return hosted.clone();
    }

    @Override
    public Backend backend(int rank) {
        return backends[rank];
    }

    @Override
    public Communicator world(int rank) {
        return world.communicator(rank);
    }

    @Override
    public int device(int rank) {
        return backends[rank] instanceof CudaBackend cuda ? cuda.device() : -1;
    }

    @Override
    public <T> List<T> run(RankTask<T> task) {
        return world.run((rank, comm) -> task.run(rank));
    }

    @Override
    public void gather(IntFunction<Tensor> piece, Placer place) {
        for (int r = 0; r < backends.length; r++) {
            Backend b = backends[r];
            place.place(r, piece.apply(r), b::copy);
            b.synchronize();
        }
    }

    @Override
    public List<byte[]> gatherBytes(String key, IntFunction<byte[]> payload) {
        List<byte[]> all = new ArrayList<>();
        for (int r = 0; r < backends.length; r++) {
            all.add(payload.apply(r));
        }
        return all;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        world.close();
        closeBackends();
    }

    private void closeBackends() {
        for (Backend b : backends) {
            if (b != null) {
                b.close();
            }
        }
    }
}
