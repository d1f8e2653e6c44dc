package org.usp4j.comm.nccl;

import java.util.Optional;
import org.usp4j.cuda.Cuda;
import org.usp4j.nccl.Nccl;
import org.usp4j.nccl.NcclCommunicator;
import org.usp4j.nccl.NcclConfig;
import org.usp4j.nccl.NcclDataType;
import org.usp4j.nccl.NcclRedOp;
import org.usp4j.nccl.NcclUniqueId;
import org.usp4j.tensor.DevicePointer;

/**
 * {@link NcclEndpoint} over an {@link NcclCommunicator}: the real library. Over a borrowed communicator
 * {@link #abort} and {@link #destroy} only end the wrapper (and the group communicator never calls them).
 */
final class NativeNcclEndpoint implements NcclEndpoint {

    /**
     * Every split is blocking and shares nothing with its parent. Without a config NCCL copies the parent's:
     * a caller's communicator made with splitShare = 1 would hand its abort flag to the split, so usp4j's abort
     * of the split after a failure would abort the caller's communicator too; a non-blocking one would make
     * the split's calls return ncclInProgress, which usp4j does not poll for.
     */
    static final NcclConfig SPLIT_CONFIG = NcclConfig.defaults().withBlocking(true).withSplitShare(false);

    private final NcclCommunicator comm;
    private final boolean nativeAllToAll;

    private NativeNcclEndpoint(NcclCommunicator comm) {
        this.comm = comm;
        this.nativeAllToAll = Nccl.hasFunction("ncclAlltoAll");
    }

    /** The endpoint over an existing communicator (a caller's borrowed one). */
    static NcclEndpoint over(NcclCommunicator comm) {
        return new NativeNcclEndpoint(comm);
    }

    /** Endpoints on CUDA device {@code device}. */
    static Factory factory(int device) {
        return new Factory() {
            @Override
            public NcclUniqueId uniqueId() {
                return Nccl.uniqueId();
            }

            @Override
            public NcclEndpoint initRank(int nranks, NcclUniqueId id, int rank) {
                Cuda.setDevice(device); // ncclCommInitRank uses the calling thread's device
                return new NativeNcclEndpoint(NcclCommunicator.initRank(nranks, id, rank));
            }

            @Override
            public void bindThread() {
                Cuda.setDevice(device);
            }

            @Override
            public String toString() {
                return "NCCL " + Nccl.version() + " on CUDA device " + device;
            }
        };
    }

    @Override
    public int rank() {
        return comm.rank();
    }

    @Override
    public int size() {
        return comm.size();
    }

    @Override
    public boolean hasNativeAllToAll() {
        return nativeAllToAll;
    }

    @Override
    public void allToAll(DevicePointer send, DevicePointer recv, long count, NcclDataType type, DeviceStream stream) {
        comm.allToAll(send, recv, count, type, CudaDeviceStream.cudaStream(stream));
    }

    @Override
    public void allGather(DevicePointer send, DevicePointer recv, long count, NcclDataType type, DeviceStream stream) {
        comm.allGather(send, recv, count, type, CudaDeviceStream.cudaStream(stream));
    }

    @Override
    public void reduceScatterSum(DevicePointer send, DevicePointer recv, long recvCount, DeviceStream stream) {
        comm.reduceScatter(send, recv, recvCount, NcclDataType.FLOAT32, NcclRedOp.SUM, CudaDeviceStream.cudaStream(stream));
    }

    @Override
    public void send(DevicePointer buffer, long count, NcclDataType type, int peer, DeviceStream stream) {
        comm.send(buffer, count, type, peer, CudaDeviceStream.cudaStream(stream));
    }

    @Override
    public void recv(DevicePointer buffer, long count, NcclDataType type, int peer, DeviceStream stream) {
        comm.recv(buffer, count, type, peer, CudaDeviceStream.cudaStream(stream));
    }

    @Override
    public void groupStart() {
        Nccl.groupStart();
    }

    @Override
    public void groupEnd() {
        Nccl.groupEnd();
    }

    @Override
    public Optional<RuntimeException> asyncError() {
        return comm.isClosed() ? Optional.empty() : comm.asyncError().map(e -> e);
    }

    @Override
    public NcclEndpoint split(int color, int key) {
        return new NativeNcclEndpoint(comm.split(color, key, SPLIT_CONFIG).orElseThrow(
                () -> new IllegalStateException("ncclCommSplit with color " + color + " returned no communicator")));
    }

    @Override
    public void abort() {
        comm.abort();
    }

    @Override
    public void destroy() {
        comm.close();
    }

    @Override
    public String toString() {
        return "NativeNcclEndpoint[rank " + comm.rank() + " of " + comm.size() + ", device " + comm.cudaDevice() + "]";
    }
}
