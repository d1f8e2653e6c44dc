package org.usp4j.api.internal;

import java.time.Duration;
import java.util.Objects;
import org.usp4j.api.BackendKind;
import org.usp4j.api.BackendUnavailableException;
import org.usp4j.api.InProcessWorld;
import org.usp4j.backend.Backend;
import org.usp4j.cpu.CpuAttentionKernel;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.cuda.Cuda;
import org.usp4j.gpu.GpuAvailability;
import org.usp4j.gpu.sdpa.CudnnBackends;

/** Makes the in-process worlds of {@link org.usp4j.api.Usp4j}. */
public final class InProcessWorlds {

    private InProcessWorlds() {
    }

    /** P CPU ranks sharing one kernel (and with it one thread pool, so P ranks never oversubscribe the cores). */
    public static InProcessWorld cpu(int ranks, Duration timeout) {
        checkArguments(ranks, timeout);
        CpuAttentionKernel kernel = new CpuAttentionKernel();
        Backend[] backends = new Backend[ranks];
        for (int r = 0; r < ranks; r++) {
            backends[r] = new CpuBackend(kernel);
        }
        return new LocalRanksWorld(BackendKind.CPU, -1, backends, timeout);
    }

    /** P CUDA ranks on one device, each with a stream of its own. */
    public static InProcessWorld cuda(int ranks, int device, Duration timeout) {
        checkArguments(ranks, timeout);
        GpuAvailability.problem().ifPresent(why -> {
            throw new BackendUnavailableException("the CUDA backend cannot run here: " + why);
        });
        int devices = Cuda.deviceCount();
        if (device < 0 || device >= devices) {
            throw new IllegalArgumentException("CUDA device " + device + " does not exist (this machine has "
                    + devices + ")");
        }
        int callerDevice = Cuda.currentDevice();
        Backend[] backends = new Backend[ranks];
        try {
            for (int r = 0; r < ranks; r++) {
                backends[r] = CudnnBackends.create(device);
            }
            return new LocalRanksWorld(BackendKind.CUDA, device, backends, timeout);
        } catch (RuntimeException | Error e) {
            for (Backend b : backends) {
                if (b != null) {
                    b.close();
                }
            }
            throw e;
        } finally {
            Cuda.setDevice(callerDevice); // creating the backends selected the device on this thread
        }
    }

    private static void checkArguments(int ranks, Duration timeout) {
        if (ranks < 1) {
            throw new IllegalArgumentException("an in-process world needs at least 1 rank, got " + ranks);
        }
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
    }
}
