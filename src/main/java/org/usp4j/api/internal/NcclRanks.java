package org.usp4j.api.internal;

import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Objects;
import org.usp4j.api.BackendKind;
import org.usp4j.api.BackendUnavailableException;
import org.usp4j.api.NcclHandles;
import org.usp4j.api.ProcessRank;
import org.usp4j.comm.Communicator;
import org.usp4j.cuda.Cuda;
import org.usp4j.cuda.CudaStream;
import org.usp4j.gpu.CudaBackend;
import org.usp4j.gpu.GpuAvailability;
import org.usp4j.gpu.sdpa.CudnnBackends;
import org.usp4j.nccl.Nccl;
import org.usp4j.nccl.NcclCommunicator;

/**
 * Makes {@link org.usp4j.api.Usp4j#ncclRank}: everything that can be checked without the handles first
 * (the timeout, CUDA, cuDNN, NCCL, the device), then the borrowed wrappers of the caller's communicator
 * and stream, a CUDA backend on that stream, and the world communicator over them
 * ({@link NcclWorldAdapter}).
 */
public final class NcclRanks {

    private NcclRanks() {
    }

    /** The process rank over the caller's handles; see {@link org.usp4j.api.Usp4j#ncclRank}. */
    public static ProcessRank open(NcclHandles handles, Duration timeout) {
        Objects.requireNonNull(handles, "handles");
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
        GpuAvailability.problem().ifPresent(why -> {
            throw new BackendUnavailableException("an NCCL rank needs the CUDA backend, which cannot run here: " + why);
        });
        try {
            Nccl.library();
        } catch (RuntimeException | LinkageError e) {
            throw new BackendUnavailableException("NCCL is not available: " + e.getMessage());
        }
        int devices = Cuda.deviceCount();
        if (handles.device() >= devices) {
            throw new IllegalArgumentException("CUDA device " + handles.device() + " does not exist (this machine has "
                    + devices + ")");
        }
        Cuda.setDevice(handles.device());
        List<AutoCloseable> created = new ArrayList<>();
        try {
            NcclCommunicator comm = NcclCommunicator.borrow(MemorySegment.ofAddress(handles.communicator()));
            created.add(comm);
            if (comm.cudaDevice() != handles.device()) {
                throw new IllegalArgumentException("the NCCL communicator runs on CUDA device " + comm.cudaDevice()
                        + ", but the handles name device " + handles.device());
            }
            CudaStream stream = CudaStream.borrow(handles.stream());
            created.add(stream);
            CudaBackend backend = CudnnBackends.onStream(handles.device(), stream);
            created.add(0, backend); // closed before the stream it enqueues on
            Communicator world = NcclWorldAdapter.world(comm, stream, timeout);
            created.add(0, world);   // closed first: it may still use the backend's stream
            return new CommunicatorRank(world, backend, BackendKind.CUDA, handles.device(), created);
        } catch (RuntimeException | Error e) {
            for (AutoCloseable c : created) {
                try {
                    c.close();
                } catch (Exception suppressed) {
                    e.addSuppressed(suppressed);
                }
            }
            throw e;
        }
    }
}
