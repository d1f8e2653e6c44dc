package org.usp4j.api.internal;

import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import java.util.OptionalInt;
import org.usp4j.api.AttentionLayer;
import org.usp4j.api.AttentionOptions;
import org.usp4j.api.BackendKind;
import org.usp4j.api.LinearAttentionLayer;
import org.usp4j.api.LinearAttentionOptions;
import org.usp4j.api.Mesh;
import org.usp4j.api.ProcessRank;
import org.usp4j.backend.Backend;
import org.usp4j.comm.Communicator;
import org.usp4j.cuda.Cuda;

/**
 * A {@link ProcessRank} over any world {@link Communicator} and backend: the rank of a process whose
 * peers are other processes (NCCL), or, in tests, other threads. Calls may come from any thread, one at
 * a time; a CUDA rank selects its device on the calling thread first.
 */
public final class CommunicatorRank implements ProcessRank, RankSite {

    private final Communicator world;
    private final Backend backend;
    private final BackendKind kind;
    private final int device;
    private final Runnable selectDevice;
    private final CallerTensors.Placement placement;
    private final List<AutoCloseable> owned;
    private final List<UspLayer> layers = new ArrayList<>();
    private boolean closed;

    /**
     * A rank that closes {@code owned} in the given order when it is closed (after its layers). Borrowed
     * native objects belong in that list only as their non-owning wrappers.
     */
    public CommunicatorRank(Communicator world, Backend backend, BackendKind kind, int device, List<AutoCloseable> owned) {
        this(world, backend, kind, device, kind == BackendKind.CUDA ? () -> Cuda.setDevice(device) : () -> { }, owned);
    }

    /**
     * As above, with what selects the rank's device on a calling thread ({@code cudaSetDevice} for a CUDA
     * rank; tests whose "device" memory is host memory pass nothing to do).
     */
    public CommunicatorRank(Communicator world, Backend backend, BackendKind kind, int device, Runnable selectDevice,
                            List<AutoCloseable> owned) {
        this.selectDevice = Objects.requireNonNull(selectDevice, "selectDevice");
        this.world = Objects.requireNonNull(world, "world");
        this.backend = Objects.requireNonNull(backend, "backend");
        this.kind = Objects.requireNonNull(kind, "kind");
        this.device = device;
        this.placement = kind == BackendKind.CPU ? CallerTensors.Placement.cpu(true) : CallerTensors.Placement.cuda(device);
        this.owned = List.copyOf(owned);
    }

    @Override
    public int rank() {
        return world.rank();
    }

    @Override
    public int worldSize() {
        return world.size();
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
    public synchronized AttentionLayer newAttention(Mesh mesh, AttentionOptions options) {
        enter();
        UspLayer layer = UspLayer.create(mesh, options, this, world);
        layers.add(layer);
        return layer;
    }

    @Override
    public synchronized LinearAttentionLayer newLinearAttention(Mesh mesh, LinearAttentionOptions options) {
        enter();
        LinearLayer layer = LinearLayer.create(mesh, options, this, world);
        layers.add(layer.usp());
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
    public synchronized void enter() {
        if (closed) {
            throw new IllegalStateException("process rank " + world.rank() + " is closed");
        }
        selectDevice.run();
    }

    @Override
    public boolean synchronousCalls() {
        return false;
    }

    @Override
    public synchronized void closed(UspLayer layer) {
        layers.remove(layer);
    }

    @Override
    public void close() {
        List<UspLayer> open;
        synchronized (this) {
            if (closed) {
                return;
            }
            closed = true;
            open = List.copyOf(layers);
        }
        RuntimeException failure = null;
        for (UspLayer layer : open) {
            failure = closeQuietly(layer, failure);
        }
        for (AutoCloseable resource : owned) {
            failure = closeQuietly(resource, failure);
        }
        if (failure != null) {
            throw failure;
        }
    }

    @Override
    public String toString() {
        return "ProcessRank[rank " + world.rank() + " of " + world.size() + ", " + kind
                + (kind == BackendKind.CUDA ? " device " + device : "") + (closed ? ", closed]" : "]");
    }

    /** Closes {@code resource}; keeps the first failure and goes on, so everything gets its close. */
    private static RuntimeException closeQuietly(AutoCloseable resource, RuntimeException first) {
        try {
            resource.close();
            return first;
        } catch (Exception e) {
            RuntimeException r = e instanceof RuntimeException re ? re : new IllegalStateException(e);
            if (first == null) {
                return r;
            }
            first.addSuppressed(r);
            return first;
        }
    }
}
