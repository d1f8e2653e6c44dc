package org.usp4j.nccl;

import static org.usp4j.bindings.nccl.NcclApi.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import org.usp4j.bindings.nccl.ncclUniqueId;
import org.usp4j.cuda.CudaStream;
import org.usp4j.nativelib.NativeResource;
import org.usp4j.tensor.DevicePointer;

/**
 * An NCCL communicator ({@code ncclComm_t}): creation (by rank, all-in-one, split), the queries,
 * async-error polling, abort, and the collectives and point-to-point calls as thin typed wrappers that
 * check buffer sizes and devices before calling NCCL. An owned one is destroyed once by
 * {@link #close()}, or ended by {@link #abort()} instead; a {@link #borrow borrowed} one (a caller's)
 * is never destroyed or aborted by usp4j: closing it only ends the wrapper. The library-independent
 * {@code Communicator} (rendezvous, watchdog, byte accounting) is built on top of this.
 */
public final class NcclCommunicator extends NativeResource {

    private final MemorySegment comm;
    private final int size;
    private final int rank;
    private final int device;
    private final boolean borrowed;

    private NcclCommunicator(MemorySegment comm, int size, int rank, int device, boolean borrowed) {
        this.comm = comm;
        this.size = size;
        this.rank = rank;
        this.device = device;
        this.borrowed = borrowed;
    }

    /** Takes ownership of a new {@code ncclComm_t}; destroys it if the queries fail. */
    private static NcclCommunicator wrap(MemorySegment comm) {
        try {
            return query(comm, false);
        } catch (RuntimeException e) {
            ncclCommDestroy(comm);
            throw e;
        }
    }

    private static NcclCommunicator query(MemorySegment comm, boolean borrowed) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_INT, 3);
            Nccl.check(ncclCommCount(comm, out), "ncclCommCount", comm);
            Nccl.check(ncclCommUserRank(comm, out.asSlice(4)), "ncclCommUserRank", comm);
            Nccl.check(ncclCommCuDevice(comm, out.asSlice(8)), "ncclCommCuDevice", comm);
            return new NcclCommunicator(comm, out.getAtIndex(ValueLayout.JAVA_INT, 0),
                    out.getAtIndex(ValueLayout.JAVA_INT, 1), out.getAtIndex(ValueLayout.JAVA_INT, 2), borrowed);
        }
    }

    /**
     * Wraps a caller's initialised communicator without taking ownership: it is queried (size, rank,
     * device) but never destroyed or aborted by usp4j; {@link #close()} and {@link #abort()} only end
     * this wrapper. Communicators split from it are usp4j's own. The NULL handle is refused before any
     * native call; any other handle must be a live {@code ncclComm_t}, as NCCL cannot check it.
     */
    public static NcclCommunicator borrow(MemorySegment handle) {
        if (handle == null || handle.address() == 0) {
            throw new IllegalArgumentException("the NCCL communicator handle is NULL; pass an initialised ncclComm_t");
        }
        Nccl.library();
        return query(MemorySegment.ofAddress(handle.address()), true);
    }

    /** True for a caller's communicator wrapped by {@link #borrow}, which usp4j never destroys. */
    public boolean isBorrowed() {
        return borrowed;
    }

    /**
     * Joins communicator {@code id} as {@code rank} of {@code nranks}, on the calling thread's
     * current CUDA device. Blocks until all ranks have joined.
     */
    public static NcclCommunicator initRank(int nranks, NcclUniqueId id, int rank) {
        return initRank(nranks, id, rank, null);
    }

    /** As {@link #initRank(int, NcclUniqueId, int)}, with options; must be blocking here. */
    public static NcclCommunicator initRank(int nranks, NcclUniqueId id, int rank, NcclConfig config) {
        if (nranks < 1) {
            throw new IllegalArgumentException("nranks must be >= 1, got " + nranks);
        }
        if (rank < 0 || rank >= nranks) {
            throw new IllegalArgumentException("rank " + rank + " is outside [0, " + nranks + ")");
        }
        if (id == null) {
            throw new IllegalArgumentException("unique id is null");
        }
        requireBlocking(config);
        Nccl.library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            MemorySegment idSegment = ncclUniqueId.allocate(arena);
            id.writeTo(idSegment);
            if (config == null) {
                Nccl.check(ncclCommInitRank(out, nranks, idSegment, rank), "ncclCommInitRank", MemorySegment.NULL);
            } else {
                Nccl.check(ncclCommInitRankConfig(out, nranks, idSegment, rank, config.toNative(arena)),
                        "ncclCommInitRankConfig", MemorySegment.NULL);
            }
            return wrap(out.get(ValueLayout.ADDRESS, 0));
        }
    }

    /** One communicator per listed device, all in this process ({@code ncclCommInitAll}); rank i uses devices[i]. */
    public static List<NcclCommunicator> initAll(int... devices) {
        if (devices.length == 0) {
            throw new IllegalArgumentException("initAll needs at least one device");
        }
        for (int d : devices) {
            if (d < 0) {
                throw new IllegalArgumentException("negative device ordinal " + d);
            }
        }
        Nccl.library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment comms = arena.allocate(ValueLayout.ADDRESS, devices.length);
            Nccl.check(ncclCommInitAll(comms, devices.length, arena.allocateFrom(ValueLayout.JAVA_INT, devices)),
                    "ncclCommInitAll", MemorySegment.NULL);
            List<NcclCommunicator> result = new ArrayList<>(devices.length);
            try {
                for (int i = 0; i < devices.length; i++) {
                    result.add(wrap(comms.getAtIndex(ValueLayout.ADDRESS, i)));
                }
            } catch (RuntimeException e) {
                result.forEach(NcclCommunicator::close);
                for (int i = result.size() + 1; i < devices.length; i++) {
                    ncclCommDestroy(comms.getAtIndex(ValueLayout.ADDRESS, i));
                }
                throw e;
            }
            return List.copyOf(result);
        }
    }

    /**
     * Collective over all ranks of this communicator: ranks with the same {@code color} form a new
     * communicator, ordered by {@code key}. A rank passing {@link #NO_COLOR} joins none and gets
     * empty. Inherits this communicator's options.
     */
    public Optional<NcclCommunicator> split(int color, int key) {
        return split(color, key, null);
    }

    /** {@code NCCL_SPLIT_NOCOLOR}. */
    public static final int NO_COLOR = -1;

    /** As {@link #split(int, int)}, with options for the new communicator; must be blocking here. */
    public Optional<NcclCommunicator> split(int color, int key, NcclConfig config) {
        if (color < 0 && color != NO_COLOR) {
            throw new IllegalArgumentException("color must be >= 0 or NO_COLOR (-1), got " + color);
        }
        requireBlocking(config);
        MemorySegment handle = handle();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.ADDRESS);
            Nccl.check(ncclCommSplit(handle, color, key, out, config == null ? MemorySegment.NULL : config.toNative(arena)),
                    "ncclCommSplit", handle);
            MemorySegment child = out.get(ValueLayout.ADDRESS, 0);
            return child.equals(MemorySegment.NULL) ? Optional.empty() : Optional.of(wrap(child));
        }
    }

    /** The raw {@code ncclComm_t}; valid until closed or aborted. */
    public MemorySegment handle() {
        checkOpen();
        return comm;
    }

    /** Number of ranks. */
    public int size() {
        return size;
    }

    /** This communicator's rank. */
    public int rank() {
        return rank;
    }

    /** The CUDA device this rank runs on. */
    public int cudaDevice() {
        return device;
    }

    /** The error an asynchronous operation hit, if any ({@code ncclCommGetAsyncError}); never blocks. */
    public Optional<NcclException> asyncError() {
        MemorySegment handle = handle();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
            Nccl.check(ncclCommGetAsyncError(handle, out), "ncclCommGetAsyncError", handle);
            int code = out.get(ValueLayout.JAVA_INT, 0);
            return code == ncclSuccess() ? Optional.empty()
                    : Optional.of(Nccl.failure(code, "asynchronous NCCL operation", handle));
        }
    }

    /** NCCL's last error message for this communicator. */
    public String lastError() {
        return NcclCriticalCalls.lastError(handle());
    }

    /**
     * Flushes outstanding operations and releases resources shared with peers
     * ({@code ncclCommFinalize}); {@link #close()} then destroys the rest locally. Refused for a
     * borrowed communicator, whose owner finalizes it.
     */
    public void finalizeCommunicator() {
        MemorySegment handle = handle();
        if (borrowed) {
            throw new IllegalStateException("a borrowed NCCL communicator is finalized by its owner, not by usp4j");
        }
        Nccl.check(ncclCommFinalize(handle), "ncclCommFinalize", handle);
    }

    /**
     * Aborts outstanding operations and frees the communicator ({@code ncclCommAbort}), e.g. when a
     * peer died; the communicator counts as closed afterwards. A borrowed communicator is left to its
     * owner: only this wrapper ends.
     */
    public void abort() {
        if (markClosed() && !borrowed) {
            Nccl.check(ncclCommAbort(comm), "ncclCommAbort", MemorySegment.NULL);
        }
    }

    /** Every rank receives all ranks' {@code count} elements, concatenated in rank order. */
    public void allGather(DevicePointer send, DevicePointer recv, long count, NcclDataType type, CudaStream stream) {
        requireBuffer("send", send, count, type, 1);
        requireBuffer("receive", recv, count, type, size);
        MemorySegment handle = handle();
        Nccl.check(ncclAllGather(address(send), address(recv), count, type.code(), handle, CudaStream.handleOf(stream)),
                "ncclAllGather", handle);
    }

    /** Element-wise reduction of {@code count} elements over all ranks, result on every rank. */
    public void allReduce(DevicePointer send, DevicePointer recv, long count, NcclDataType type, NcclRedOp op,
                          CudaStream stream) {
        requireBuffer("send", send, count, type, 1);
        requireBuffer("receive", recv, count, type, 1);
        MemorySegment handle = handle();
        Nccl.check(ncclAllReduce(address(send), address(recv), count, type.code(), op.code(), handle, CudaStream.handleOf(stream)),
                "ncclAllReduce", handle);
    }

    /** Reduction of {@code size * recvCount} elements; rank r receives block r. */
    public void reduceScatter(DevicePointer send, DevicePointer recv, long recvCount, NcclDataType type, NcclRedOp op,
                              CudaStream stream) {
        requireBuffer("send", send, recvCount, type, size);
        requireBuffer("receive", recv, recvCount, type, 1);
        MemorySegment handle = handle();
        Nccl.check(ncclReduceScatter(address(send), address(recv), recvCount, type.code(), op.code(), handle,
                CudaStream.handleOf(stream)), "ncclReduceScatter", handle);
    }

    /** Copies {@code count} elements from {@code root}'s send buffer to every rank's receive buffer. */
    public void broadcast(DevicePointer send, DevicePointer recv, long count, NcclDataType type, int root,
                          CudaStream stream) {
        requirePeer("root", root);
        requireBuffer("send", send, count, type, 1);
        requireBuffer("receive", recv, count, type, 1);
        MemorySegment handle = handle();
        Nccl.check(ncclBroadcast(address(send), address(recv), count, type.code(), root, handle, CudaStream.handleOf(stream)),
                "ncclBroadcast", handle);
    }

    /**
     * Native all-to-all ({@code ncclAlltoAll}, NCCL 2.28.3+): block j of {@code count} elements goes
     * to rank j; received blocks are placed in rank order. Not in place. On older NCCL this throws
     * {@link org.usp4j.nativelib.NativeFunctionUnavailableException}; use grouped send/recv there.
     */
    public void allToAll(DevicePointer send, DevicePointer recv, long count, NcclDataType type, CudaStream stream) {
        requireBuffer("send", send, count, type, size);
        requireBuffer("receive", recv, count, type, size);
        long bytes = count * type.byteSize() * size;
        if (bytes > 0 && send.address() < recv.address() + bytes && recv.address() < send.address() + bytes) {
            throw new IllegalArgumentException("all-to-all cannot run in place: send and receive buffers overlap");
        }
        Nccl.requireFunction("ncclAlltoAll");
        MemorySegment handle = handle();
        Nccl.check(ncclAlltoAll(address(send), address(recv), count, type.code(), handle, CudaStream.handleOf(stream)),
                "ncclAlltoAll", handle);
    }

    /** Sends {@code count} elements to {@code peer}; pair with the peer's {@link #recv}, grouped when several. */
    public void send(DevicePointer buffer, long count, NcclDataType type, int peer, CudaStream stream) {
        requirePeer("peer", peer);
        requireBuffer("send", buffer, count, type, 1);
        MemorySegment handle = handle();
        Nccl.check(ncclSend(address(buffer), count, type.code(), peer, handle, CudaStream.handleOf(stream)), "ncclSend", handle);
    }

    /** Receives {@code count} elements from {@code peer}. */
    public void recv(DevicePointer buffer, long count, NcclDataType type, int peer, CudaStream stream) {
        requirePeer("peer", peer);
        requireBuffer("receive", buffer, count, type, 1);
        MemorySegment handle = handle();
        Nccl.check(ncclRecv(address(buffer), count, type.code(), peer, handle, CudaStream.handleOf(stream)), "ncclRecv", handle);
    }

    @Override
    protected String describe() {
        return (borrowed ? "borrowed " : "") + "NCCL communicator (rank " + rank + " of " + size + ")";
    }

    @Override
    protected void release() {
        if (!borrowed) { // a borrowed communicator belongs to the caller: only this wrapper ends
            Nccl.check(ncclCommDestroy(comm), "ncclCommDestroy", MemorySegment.NULL);
        }
    }

    private void requirePeer(String what, int peer) {
        if (peer < 0 || peer >= size) {
            throw new IllegalArgumentException(what + " " + peer + " is outside [0, " + size + ")");
        }
    }

    private void requireBuffer(String what, DevicePointer buffer, long count, NcclDataType type, int blocks) {
        if (count < 0) {
            throw new IllegalArgumentException("element count must be >= 0, got " + count);
        }
        if (buffer == null) {
            throw new IllegalArgumentException(what + " buffer is null");
        }
        long needed = Math.multiplyExact(Math.multiplyExact(count, (long) type.byteSize()), blocks);
        if (buffer.byteSize() < needed) {
            throw new IllegalArgumentException(what + " buffer of " + buffer.byteSize() + " bytes is smaller than the "
                    + needed + " bytes needed (" + count + " x " + type + (blocks > 1 ? " x " + blocks + " ranks" : "") + ")");
        }
        if (buffer.device() != device) {
            throw new IllegalArgumentException(what + " buffer is on device " + buffer.device()
                    + " but this communicator runs on device " + device);
        }
    }

    private static void requireBlocking(NcclConfig config) {
        if (config != null && !config.isBlocking()) {
            throw new IllegalArgumentException("non-blocking communicators are not supported by this wrapper yet");
        }
    }

    private static MemorySegment address(DevicePointer pointer) {
        return MemorySegment.ofAddress(pointer.address());
    }
}
