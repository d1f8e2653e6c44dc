package org.usp4j.cli;

import java.util.ArrayList;
import java.util.List;
import org.usp4j.backend.Backend;
import org.usp4j.cpu.CpuAttentionKernel;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.cuda.Cuda;
import org.usp4j.gpu.GpuAvailability;
import org.usp4j.gpu.sdpa.CudnnBackends;
import org.usp4j.kernel.AttentionKernel;

/**
 * Makes one {@link Backend} per simulated rank for a {@code --backend} choice and closes every one it
 * made. CPU ranks share one kernel, and with it one thread pool, so P ranks never oversubscribe the cores.
 */
final class RankBackends implements AutoCloseable {

    private final BackendKind kind;
    private final AttentionKernel cpuKernel;
    private final List<Backend> opened = new ArrayList<>();

    private RankBackends(BackendKind kind, AttentionKernel cpuKernel) {
        this.kind = kind;
        this.cpuKernel = cpuKernel;
    }

    /**
     * Checks that {@code kind} can run here; throws a {@link CommandFailure} (exit 1) saying why not.
     * {@link BackendKind#AUTO} becomes CUDA when a GPU is usable, else CPU.
     */
    static RankBackends open(BackendKind kind) {
        return switch (kind) {
            case AUTO -> open(GpuAvailability.problem().isEmpty() ? BackendKind.CUDA : BackendKind.CPU);
            case CPU -> new RankBackends(kind, new CpuAttentionKernel());
            case CUDA -> {
                GpuAvailability.problem().ifPresent(why -> {
                    throw new CommandFailure("backend cuda is not available: " + why + " (use --backend cpu)");
                });
                yield new RankBackends(kind, null);
            }
        };
    }

    /** The backend kind the ranks get: CPU or CUDA, never AUTO. */
    BackendKind kind() {
        return kind;
    }

    /** Threads of the shared CPU kernel's pool; 0 for CUDA. */
    int cpuThreads() {
        return cpuKernel instanceof CpuAttentionKernel k ? k.parallelism() : 0;
    }

    /** Free memory of device 0, where in-process CUDA ranks run ({@code cudaMemGetInfo}); only for CUDA. */
    long deviceFreeBytes() {
        if (kind != BackendKind.CUDA) {
            throw new IllegalStateException("no device for backend " + kind);
        }
        Cuda.setDevice(0);
        return Cuda.memoryInfo().freeBytes();
    }

    /** A new backend for {@code rank}; closed by {@link #close}. */
    synchronized Backend forRank(int rank) {
        Backend b = switch (kind) {
            case AUTO -> throw new IllegalStateException("unreachable: auto is resolved in open()");
            case CPU -> new CpuBackend(cpuKernel);
            // In-process GPU ranks share device 0, each with its own stream (see DeviceTransport).
            case CUDA -> CudnnBackends.create(0);
        };
        opened.add(b);
        return b;
    }

    @Override
    public synchronized void close() {
        for (Backend b : opened) {
            b.close();
        }
        opened.clear();
    }
}
