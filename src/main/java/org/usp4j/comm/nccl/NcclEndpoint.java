package org.usp4j.comm.nccl;

import java.util.Optional;
import org.usp4j.nccl.NcclDataType;
import org.usp4j.nccl.NcclUniqueId;
import org.usp4j.tensor.DevicePointer;

/**
 * The few NCCL operations the group communicator uses, on one rank's handle of one NCCL communicator:
 * the seam between {@link NcclGroupCommunicator} (validation, streams, byte accounting, failure handling)
 * and NCCL itself. {@link NativeNcclEndpoint} calls the real library; tests use a fake that moves host
 * bytes between in-process ranks and records what was called.
 *
 * <p>Callers check every argument before calling; implementations may assume valid, contiguous buffers.
 */
interface NcclEndpoint {

    int rank();

    int size();

    /** Whether {@link #allToAll} is NCCL's own (2.28.3+); otherwise the communicator groups send/recv. */
    boolean hasNativeAllToAll();

    /** {@code ncclAlltoAll}: {@code count} elements per peer. */
    void allToAll(DevicePointer send, DevicePointer recv, long count, NcclDataType type, DeviceStream stream);

    /** {@code ncclAllGather}: {@code count} elements from every rank, in rank order. */
    void allGather(DevicePointer send, DevicePointer recv, long count, NcclDataType type, DeviceStream stream);

    /** {@code ncclReduceScatter} with a float32 sum: rank r receives the sum of every rank's block r. */
    void reduceScatterSum(DevicePointer send, DevicePointer recv, long recvCount, DeviceStream stream);

    /** {@code ncclSend}. */
    void send(DevicePointer buffer, long count, NcclDataType type, int peer, DeviceStream stream);

    /** {@code ncclRecv}. */
    void recv(DevicePointer buffer, long count, NcclDataType type, int peer, DeviceStream stream);

    /** {@code ncclGroupStart}: the calls up to {@link #groupEnd} are launched together. */
    void groupStart();

    /** {@code ncclGroupEnd}. */
    void groupEnd();

    /** {@code ncclCommGetAsyncError}; never blocks. */
    Optional<RuntimeException> asyncError();

    /** {@code ncclCommSplit} (blocking, collective over this communicator); never called with no color. */
    NcclEndpoint split(int color, int key);

    /** {@code ncclCommAbort}: ends outstanding work and frees the communicator. Idempotent with {@link #destroy}. */
    void abort();

    /** {@code ncclCommDestroy} (which in NCCL 2.23 also does the finalize work). Idempotent with {@link #abort}. */
    void destroy();

    /** How a rank makes its world endpoint. */
    interface Factory {

        /** {@code ncclGetUniqueId}, called on rank 0 only. */
        NcclUniqueId uniqueId();

        /** {@code ncclCommInitRank} on this rank's device; blocks until every rank joined. */
        NcclEndpoint initRank(int nranks, NcclUniqueId id, int rank);

        /** Makes this rank's device current on the calling thread (helper and watchdog threads). */
        void bindThread();
    }
}
