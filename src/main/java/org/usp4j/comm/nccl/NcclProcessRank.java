package org.usp4j.comm.nccl;

import java.io.PrintStream;
import java.time.Duration;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.backend.Backend;
import org.usp4j.cuda.Cuda;
import org.usp4j.gpu.sdpa.CudnnBackends;
import org.usp4j.launch.LaunchedRank;
import org.usp4j.launch.LaunchEnvironment;
import org.usp4j.launch.Rendezvous;
import org.usp4j.gpu.CudaBackend;
import org.usp4j.gpu.GpuAvailability;
import org.usp4j.nccl.Nccl;

/**
 * This process as one rank of a multi-process job on NCCL: a {@link CudaBackend} on the device picked by
 * the local rank, the {@link Rendezvous} of the launch environment, and the {@link NcclGroupCommunicator}
 * world on the backend's stream. {@link #close} frees them in reverse order (the communicators first,
 * then the rendezvous, then the backend).
 *
 * <p>Device: the local rank, when that many devices are visible; otherwise local rank modulo the visible
 * devices (as with {@code CUDA_VISIBLE_DEVICES=0} for every process), which NCCL refuses by default
 * ("duplicate GPU") unless every process has its own {@code NCCL_HOSTID}.
 */
public final class NcclProcessRank implements LaunchedRank, AutoCloseable {

    private static final Logger LOG = LogManager.getLogger(NcclProcessRank.class);

    private final int device;
    private final CudaBackend backend;
    private final Rendezvous rendezvous;
    private final NcclGroupCommunicator world;
    private boolean closed;
    private boolean failed;

    private NcclProcessRank(int device, CudaBackend backend, Rendezvous rendezvous, NcclGroupCommunicator world) {
        this.device = device;
        this.backend = backend;
        this.rendezvous = rendezvous;
        this.world = world;
    }

    /**
     * Why this process cannot be an NCCL rank (no CUDA device, no cuDNN, no NCCL library), if it cannot;
     * checked without touching the network or any other rank.
     */
    public static Optional<String> unavailableReason() {
        Optional<String> gpu = GpuAvailability.problem();
        if (gpu.isPresent()) {
            return gpu;
        }
        try {
            Nccl.library();
            return Optional.empty();
        } catch (RuntimeException | LinkageError e) {
            String m = String.valueOf(e.getMessage());
            int nl = m.indexOf('\n');
            return Optional.of("NCCL is not available (" + (nl < 0 ? m : m.substring(0, nl)) + ")");
        }
    }

    /** The CUDA device for {@code localRank} among {@code visible} devices (see the class comment). */
    static int deviceFor(int localRank, int visible) {
        if (visible < 1) {
            throw new IllegalArgumentException("no CUDA device is visible");
        }
        return localRank < visible ? localRank : localRank % visible;
    }

    /**
     * Joins the job: backend on the rank's device, rendezvous, NCCL world. Collective over the job's ranks.
     *
     * @param onFailure told once, on the watchdog's thread, when the rank fails (see
     *                  {@link NcclGroupCommunicator#createWorld}); {@link #exitWhenStuck} for a command line
     * @throws IllegalStateException when {@link #unavailableReason()} has a reason
     * @throws org.usp4j.launch.RendezvousException when the ranks do not all meet within the timeout
     * @throws RankFailureException when NCCL's world does not come up within the timeout
     */
    public static NcclProcessRank open(LaunchEnvironment env, Consumer<RankFailureException> onFailure) {
        Objects.requireNonNull(env, "env");
        Objects.requireNonNull(onFailure, "onFailure");
        unavailableReason().ifPresent(why -> {
            throw new IllegalStateException("rank " + env.rank() + " of " + env.worldSize() + " cannot run on NCCL: "
                    + why);
        });
        int visible = Cuda.deviceCount();
        int device = deviceFor(env.localRank(), visible);
        if (device != env.localRank()) {
            LOG.warn("rank {}: local rank {} but {} visible CUDA device(s): sharing device {} (NCCL refuses two ranks on "
                    + "one GPU unless each process has its own NCCL_HOSTID)", env.rank(), env.localRank(), visible, device);
        }
        CudaBackend backend = CudnnBackends.create(device);
        Rendezvous rendezvous = null;
        try {
            rendezvous = Rendezvous.join(env);
            NcclGroupCommunicator world = NcclGroupCommunicator.createWorld(rendezvous, device, backend.stream(),
                    onFailure);
            return new NcclProcessRank(device, backend, rendezvous, world);
        } catch (RuntimeException | Error e) {
            if (rendezvous != null) {
                rendezvous.close();
            }
            backend.close();
            throw e;
        }
    }

    /**
     * A failure handler for a process that must never hang: the failure is written to {@code err} as one
     * {@code error:} line and the process halts with status 1 if it is still running {@code grace} after
     * the watchdog failed it (its main thread stuck in a native call). A main thread that reports the
     * failure itself and exits within the grace period is not disturbed.
     */
    public static Consumer<RankFailureException> exitWhenStuck(PrintStream err, Duration grace) {
        Objects.requireNonNull(err, "err");
        Objects.requireNonNull(grace, "grace");
        return failure -> Thread.ofPlatform().daemon().name("usp4j-exit-when-stuck").start(() -> {
            try {
                Thread.sleep(grace);
            } catch (InterruptedException e) {
                return;
            }
            err.println("error: " + String.valueOf(failure.getMessage()).replaceAll("\\s*\\R\\s*", " ")
                    + " (the process did not end within " + (grace.toMillis() % 1000 == 0 ? grace.toSeconds() + " s"
                    : grace.toMillis() + " ms") + " of the failure; halting)");
            err.flush();
            Runtime.getRuntime().halt(1);
        });
    }

    @Override
    public Rendezvous rendezvous() {
        return rendezvous;
    }

    @Override
    public NcclGroupCommunicator world() {
        return world;
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public int device() {
        return device;
    }

    @Override
    public void checkHealthy() {
        world.checkHealthy();
    }

    /** {@link #close} for a rank whose run threw: the peers may be out of step, so it does not wait for them. */
    public void closeAfterFailure() {
        failed = true;
        close();
    }

    /** Closes the world (and its splits), the rendezvous, then the backend. Idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            world.close();
        } finally {
            try {
                if (failed || world.failure().isPresent()) {
                    rendezvous.closeAfterFailure(); // the peers are not in step: no leave barrier to wait on
                } else {
                    rendezvous.close();
                }
            } finally {
                backend.close();
            }
        }
    }

    @Override
    public String toString() {
        return "NcclProcessRank[rank " + rendezvous.rank() + " of " + rendezvous.worldSize() + ", device " + device + "]";
    }
}
