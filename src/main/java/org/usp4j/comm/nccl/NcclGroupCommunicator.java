package org.usp4j.comm.nccl;

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.function.Consumer;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficCounter;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.Transfer;
import org.usp4j.cuda.Cuda;
import org.usp4j.cuda.CudaStream;
import org.usp4j.launch.LaunchEnvironment;
import org.usp4j.launch.Rendezvous;
import org.usp4j.launch.store.StoreClient;
import org.usp4j.launch.store.StoreException;
import org.usp4j.launch.store.StoreTimeoutException;
import org.usp4j.nccl.NcclCommunicator;
import org.usp4j.nccl.NcclDataType;
import org.usp4j.nccl.NcclException;
import org.usp4j.nccl.NcclUniqueId;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * A {@link Communicator} over NCCL for one process per GPU: the world from an NCCL unique id that rank 0
 * publishes through the {@link Rendezvous}, and its splits (the Ulysses and ring groups) through
 * {@code ncclCommSplit}.
 *
 * <p>Streams: all-to-all and all-gather run on the rank's compute stream (the backend's), so the work
 * after them sees their result without any host wait. {@link #sendRecv} runs on a communication stream
 * of the rank's own: the compute stream's work so far is marked with an event, the communication stream
 * waits for it, the grouped {@code ncclSend}/{@code ncclRecv} go there, and a done event is recorded;
 * {@link Transfer#await} makes the compute stream wait for that event. So a ring step's transfer
 * overlaps the step's attention, and no call blocks the host.
 *
 * <p>All-to-all is {@code ncclAlltoAll} where the loaded NCCL has it (2.28.3+), else one
 * {@code ncclGroupStart}/{@code ncclGroupEnd} around a send and a receive per peer. {@link #barrier} and
 * {@link #split} meet through the store, so a missing rank is named instead of waited on forever.
 *
 * <p>A world over a caller's communicator ({@link #borrowWorld}) has no store: its barrier is an
 * all-gather of one int per rank over NCCL, and a split first all-gathers every member's color and key
 * (so every member knows the new group's world ranks) before {@code ncclCommSplit}. Both are timed by the
 * watchdog like any collective, but without heartbeats a failure cannot name the rank that stopped.
 * usp4j never destroys or aborts the caller's communicator: {@link #close} destroys only the splits it
 * made, and after a failure aborts only those, leaving the caller's communicator in a state that its
 * owner must settle (the failure's message says so).
 *
 * <p>Accounting, as the in-process communicator: a rank is charged for what its peers receive from it,
 * never for its copies to itself. All-to-all: (n-1)/n of the send buffer; all-gather: (n-1) times the
 * send buffer; send/recv: every tensor sent to another rank. All groups of a rank share one counter.
 *
 * <p>Failures: one {@link Watchdog} per rank watches all its communicators (see there); when an
 * operation outlives the launch environment's timeout or NCCL reports an asynchronous error, every
 * communicator of the rank is aborted and every later call throws the same {@link RankFailureException},
 * naming the ranks that stopped. {@link #close} on the world waits for outstanding work, then destroys
 * every communicator of the rank (aborts them after a failure), the communication stream and the watchdog.
 *
 * <p>One thread per rank makes the calls, as with NCCL itself.
 */
public final class NcclGroupCommunicator implements Communicator {

    private static final Logger LOG = LogManager.getLogger(NcclGroupCommunicator.class);
    static final String KEY_PREFIX = "usp4j/nccl/";

    private final RankContext ctx;
    private final EndpointGuard guard;
    private final GroupMembers group;
    private final int rank;
    private final boolean world;
    private final AutoCloseable ownedStreams; // world only: its own streams (and a borrowed world's exchange buffers)
    private int splits;
    private boolean closed;

    private NcclGroupCommunicator(RankContext ctx, EndpointGuard guard, int rank, boolean world,
                                  AutoCloseable ownedStreams) {
        this.ctx = ctx;
        this.guard = guard;
        this.group = guard.group();
        this.rank = rank;
        this.world = world;
        this.ownedStreams = ownedStreams;
        ctx.open.add(this);
    }

    /**
     * This rank's world communicator on CUDA device {@code device}: rank 0 creates the NCCL unique id,
     * the rendezvous carries it to every rank, each joins ({@code ncclCommInitRank}) with its collectives
     * on {@code computeStream} (the backend's; not closed here). Collective over the rendezvous' ranks.
     *
     * @param onFailure told once when the rank fails, on the watchdog's thread (or on the rank's own for store
     *                  timeouts and NCCL errors), e.g. to end the process when its main thread is stuck in a
     *                  native call; the failure is logged anyway
     * @throws RankFailureException when not every rank joined within the timeout (naming the missing ones)
     */
    public static NcclGroupCommunicator createWorld(Rendezvous rendezvous, int device, CudaStream computeStream,
                                                    Consumer<RankFailureException> onFailure) {
        Objects.requireNonNull(rendezvous, "rendezvous");
        Objects.requireNonNull(computeStream, "computeStream");
        Objects.requireNonNull(onFailure, "onFailure");
        if (device < 0) {
            throw new IllegalArgumentException("CUDA device must be >= 0, got " + device);
        }
        Cuda.setDevice(device);
        CudaStream commStream = CudaStream.create();
        try {
            return createWorld(rendezvous, NativeNcclEndpoint.factory(device), device,
                    new CudaDeviceStream(computeStream), new CudaDeviceStream(commStream), commStream, onFailure);
        } catch (RuntimeException | Error e) {
            commStream.close();
            throw e;
        }
    }

    /** The world over any {@link NcclEndpoint.Factory} and streams (tests pass fakes); closes {@code ownedStreams} last. */
    static NcclGroupCommunicator createWorld(Rendezvous rendezvous, NcclEndpoint.Factory nccl, int device,
                                             DeviceStream compute, DeviceStream comm, AutoCloseable ownedStreams,
                                             Consumer<RankFailureException> onFailure) {
        LaunchEnvironment env = rendezvous.environment();
        int rank = env.rank();
        int size = env.worldSize();
        GroupMembers members = new GroupMembers("world", range(size));
        Watchdog watchdog = new Watchdog(rank, size, watchdogStore(rendezvous), env.timeout(), nccl::bindThread,
                onFailure);
        RankContext ctx = new RankContext(rank, size, device, compute, comm, rendezvous.store(), env.timeout(),
                watchdog, nccl);
        try {
            NcclUniqueId id = NcclUniqueId.fromBytes(rendezvous.broadcast("nccl/world-id", () -> nccl.uniqueId().bytes()));
            PendingOperation init = watchdog.begin("ncclCommInitRank", members, 1);
            NcclEndpoint endpoint = ctx.callBounded(init, () -> nccl.initRank(size, id, rank));
            EndpointGuard guard = new EndpointGuard(endpoint, members, ctx.ncclLock);
            watchdog.watch(guard);
            requireShape(endpoint, rank, size, "ncclCommInitRank");
            LOG.info("rank {} of {}: NCCL world ready on device {} ({}, all-to-all {})", rank, size, device, nccl,
                    endpoint.hasNativeAllToAll() ? "native ncclAlltoAll" : "grouped send/recv");
            return new NcclGroupCommunicator(ctx, guard, rank, true, ownedStreams);
        } catch (RuntimeException | Error e) {
            watchdog.close();
            throw e;
        }
    }

    /**
     * This rank's world over a caller's initialised NCCL communicator, which usp4j never destroys or
     * aborts (see the class comment); its collectives run on {@code computeStream} (the backend's; not
     * closed here), ring transfers on a communication stream of its own. Makes no NCCL call; the first
     * barrier or split is the first collective on the caller's communicator.
     *
     * @param timeout   how long any NCCL operation (and barrier or split agreement) may take before the
     *                  rank fails
     * @param onFailure told once when the rank fails, on the watchdog's thread (or on the rank's own for store
     *                  timeouts and NCCL errors)
     * @throws IllegalArgumentException when the timeout is not positive
     */
    public static NcclGroupCommunicator borrowWorld(NcclCommunicator borrowed, CudaStream computeStream,
                                                    Duration timeout, Consumer<RankFailureException> onFailure) {
        Objects.requireNonNull(borrowed, "borrowed");
        Objects.requireNonNull(computeStream, "computeStream");
        Objects.requireNonNull(onFailure, "onFailure");
        requirePositive(timeout);
        int device = borrowed.cudaDevice();
        Cuda.setDevice(device);
        CudaStream commStream = CudaStream.create();
        CudaExchangeBuffers buffers = null;
        try {
            buffers = CudaExchangeBuffers.allocate(EXCHANGE_INTS, borrowed.size());
            return borrowWorld(NativeNcclEndpoint.over(borrowed), NativeNcclEndpoint.factory(device), device,
                    new CudaDeviceStream(computeStream), new CudaDeviceStream(commStream), buffers, commStream,
                    timeout, onFailure);
        } catch (RuntimeException | Error e) {
            if (buffers != null) {
                buffers.close();
            }
            commStream.close();
            throw e;
        }
    }

    /**
     * The borrowed world over any endpoint, exchange buffers and streams (tests pass fakes); closes
     * {@code exchange} (unless the rank failed: device work may still use it) and then {@code ownedStreams}.
     */
    static NcclGroupCommunicator borrowWorld(NcclEndpoint borrowed, NcclEndpoint.Factory nccl, int device,
                                             DeviceStream compute, DeviceStream comm, ExchangeBuffers exchange,
                                             AutoCloseable ownedStreams, Duration timeout,
                                             Consumer<RankFailureException> onFailure) {
        requirePositive(timeout);
        if (exchange.capacity() < EXCHANGE_INTS) {
            throw new IllegalArgumentException("exchange buffers hold " + exchange.capacity() + " ints per rank, "
                    + EXCHANGE_INTS + " are needed");
        }
        int rank = borrowed.rank();
        int size = borrowed.size();
        GroupMembers members = new GroupMembers("world", range(size));
        Watchdog watchdog = new Watchdog(rank, size, null, timeout, nccl::bindThread, onFailure, BORROWED_NOTE);
        RankContext ctx = new RankContext(rank, size, device, compute, comm, null, exchange, timeout, watchdog, nccl);
        EndpointGuard guard = new EndpointGuard(borrowed, members, ctx.ncclLock, true);
        watchdog.watch(guard);
        LOG.info("rank {} of {}: NCCL world over the caller's communicator on device {} ({}, all-to-all {})", rank, size,
                device, nccl, borrowed.hasNativeAllToAll() ? "native ncclAlltoAll" : "grouped send/recv");
        AutoCloseable owned = () -> {
            try {
                if (ctx.watchdog.failure().isEmpty()) {
                    exchange.close();
                } else {
                    LOG.warn("rank {}: the barrier/split buffers are not freed: work on the caller's NCCL communicator "
                            + "may still use them", rank);
                }
            } finally {
                if (ownedStreams != null) {
                    ownedStreams.close();
                }
            }
        };
        return new NcclGroupCommunicator(ctx, guard, rank, true, owned);
    }

    /** Ints per rank the store-less barrier (1) and split agreement (color, key) exchange. */
    static final int EXCHANGE_INTS = 2;

    /** Ends every failure message of a borrowed world. */
    static final String BORROWED_NOTE = "this world runs over the caller's NCCL communicator without a rendezvous "
            + "store, so there are no heartbeats and the rank(s) that stopped cannot be named; usp4j aborted only the "
            + "communicators it split off: the caller's communicator is in an unknown state (work of usp4j's may still "
            + "be pending on it) and its owner should abort it (ncclCommAbort)";

    private static void requirePositive(Duration timeout) {
        Objects.requireNonNull(timeout, "timeout");
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
    }

    /** A store connection for the watchdog alone (its heartbeats must not wait behind a blocking call). */
    private static StoreClient watchdogStore(Rendezvous rendezvous) {
        LaunchEnvironment env = rendezvous.environment();
        StoreClient main = rendezvous.store();
        if (!env.isDistributed()) {
            return null;
        }
        return StoreClient.connect(env.masterAddr(), main.remoteAddress().getPort(), env.requireToken(), env.timeout());
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return group.size();
    }

    /** This rank's rank in the world. */
    public int worldRank() {
        return ctx.worldRank;
    }

    /** The world ranks of this group's members, in group-rank order. */
    public List<Integer> worldRanks() {
        return group.worldRanks();
    }

    /** The group's name, the same on every member ("world", "world/s0c1" for a split's color 1). */
    public String groupName() {
        return group.name();
    }

    /** The CUDA device of this rank. */
    public int device() {
        return ctx.device;
    }

    /** Whether all-to-all is NCCL's native one (2.28.3+) rather than grouped send/recv. */
    public boolean usesNativeAllToAll() {
        return guard.endpoint().hasNativeAllToAll();
    }

    /** The rank's failure, if its watchdog failed it. */
    public Optional<RankFailureException> failure() {
        return ctx.watchdog.failure();
    }

    /**
     * Throws the rank's failure, if any: call it after waiting on device work (a stream synchronize
     * returns once an abort ended the hung kernels, and the data then is not to be trusted).
     */
    public void checkHealthy() {
        RankFailureException f = ctx.failed();
        if (f != null) {
            throw f;
        }
    }

    Watchdog watchdog() {
        return ctx.watchdog;
    }

    @Override
    public void allToAll(Tensor send, Tensor recv) {
        requireUsable();
        DevicePointer s = buffer("allToAll", "send", send);
        DevicePointer r = buffer("allToAll", "recv", recv);
        if (send.dtype() != recv.dtype() || send.numel() != recv.numel()) {
            throw new IllegalArgumentException("allToAll needs send and recv of equal dtype and size, got "
                    + send.describe() + " and " + recv.describe());
        }
        int n = size();
        if (send.numel() % n != 0) {
            throw new IllegalArgumentException("allToAll: " + send.numel() + " elements do not split into " + n
                    + " equal blocks");
        }
        requireDisjoint("allToAll", "send", s, "recv", r);
        NcclDataType type = NcclDataType.of(send.dtype());
        long count = send.numel() / n;
        long block = send.byteSize() / n;
        NcclEndpoint e = guard.endpoint();
        enqueue("allToAll", ctx.compute, () -> {
            if (e.hasNativeAllToAll()) {
                e.allToAll(s, r, count, type, ctx.compute);
            } else {
                grouped(e, () -> {
                    for (int peer = 0; peer < n; peer++) {
                        e.send(s.slice(peer * block, block), count, type, peer, ctx.compute);
                        e.recv(r.slice(peer * block, block), count, type, peer, ctx.compute);
                    }
                });
            }
        });
        ctx.traffic.add(TrafficKind.ALL_TO_ALL, (n - 1) * block);
    }

    @Override
    public void allGather(Tensor send, Tensor recv) {
        requireUsable();
        DevicePointer s = buffer("allGather", "send", send);
        DevicePointer r = buffer("allGather", "recv", recv);
        int n = size();
        if (send.dtype() != recv.dtype() || recv.numel() != send.numel() * n) {
            throw new IllegalArgumentException("allGather over " + n + " ranks needs recv of " + n
                    + " x send's elements and the same dtype, got " + send.describe() + " and " + recv.describe());
        }
        long block = send.byteSize();
        boolean inPlace = s.address() == r.address() + rank * block;
        if (!inPlace) {
            requireDisjoint("allGather", "send", s, "recv", r);
        }
        NcclDataType type = NcclDataType.of(send.dtype());
        NcclEndpoint e = guard.endpoint();
        enqueue("allGather", ctx.compute, () -> e.allGather(s, r, send.numel(), type, ctx.compute));
        ctx.traffic.add(TrafficKind.ALL_GATHER, (n - 1) * block);
    }

    @Override
    public void reduceScatter(Tensor send, Tensor recv) {
        requireUsable();
        DevicePointer s = buffer("reduceScatter", "send", send);
        DevicePointer r = buffer("reduceScatter", "recv", recv);
        int n = size();
        if (send.dtype() != DType.F32 || recv.dtype() != DType.F32 || send.numel() != recv.numel() * n) {
            throw new IllegalArgumentException("reduceScatter over " + n + " ranks needs F32 send of " + n
                    + " x recv's elements, got " + send.describe() + " and " + recv.describe());
        }
        requireDisjoint("reduceScatter", "send", s, "recv", r);
        NcclEndpoint e = guard.endpoint();
        enqueue("reduceScatter", ctx.compute, () -> e.reduceScatterSum(s, r, recv.numel(), ctx.compute));
        ctx.traffic.add(TrafficKind.REDUCE_SCATTER, (n - 1) * recv.byteSize());
    }

    @Override
    public Transfer sendRecv(List<Tensor> sends, int dst, List<Tensor> recvs, int src) {
        requireUsable();
        int n = size();
        if (dst < 0 || dst >= n || src < 0 || src >= n) {
            throw new IllegalArgumentException("sendRecv: dst " + dst + " and src " + src + " must be ranks in [0, " + n
                    + ") of " + group.describe());
        }
        List<Tensor> out = List.copyOf(sends);
        List<Tensor> in = List.copyOf(recvs);
        List<DevicePointer> outBuffers = new ArrayList<>();
        List<DevicePointer> inBuffers = new ArrayList<>();
        for (Tensor t : out) {
            outBuffers.add(buffer("sendRecv", "send", t));
        }
        for (Tensor t : in) {
            DevicePointer p = buffer("sendRecv", "recv", t);
            for (DevicePointer other : outBuffers) {
                requireDisjoint("sendRecv", "recv", p, "send", other);
            }
            for (DevicePointer other : inBuffers) {
                requireDisjoint("sendRecv", "recv", p, "recv", other);
            }
            inBuffers.add(p);
        }
        String what = "sendRecv (" + out.size() + " to rank " + group.worldRank(dst) + ", " + in.size()
                + " from rank " + group.worldRank(src) + ")";
        // The transfer goes on the communication stream, after the compute work that wrote what we send.
        DeviceStream.DeviceMarker ready = ctx.compute.mark();
        try {
            ctx.comm.waitFor(ready);
        } finally {
            ready.close(); // the wait holds on to the recorded work, not to the event
        }
        NcclEndpoint e = guard.endpoint();
        PendingOperation op;
        try {
            op = enqueue(what, ctx.comm, 2, () -> grouped(e, () -> {
                for (int i = 0; i < out.size(); i++) {
                    e.send(outBuffers.get(i), out.get(i).numel(), NcclDataType.of(out.get(i).dtype()), dst, ctx.comm);
                }
                for (int i = 0; i < in.size(); i++) {
                    e.recv(inBuffers.get(i), in.get(i).numel(), NcclDataType.of(in.get(i).dtype()), src, ctx.comm);
                }
            }));
        } catch (RuntimeException | Error failure) {
            // A group can fail after launching part of its kernels, and no Transfer is left to order the
            // caller's frees after them: order the compute stream after the communication stream here.
            orderComputeAfterComm(failure);
            throw failure;
        }
        if (dst != rank) {
            ctx.traffic.add(TrafficKind.P2P, out.stream().mapToLong(Tensor::byteSize).sum());
        }
        return new StreamTransfer(op);
    }

    /**
     * Host barrier: returns when every member called it. Through the store, naming the members that did
     * not come; over a caller's communicator, an all-gather of one int, timed by the watchdog.
     */
    @Override
    public void barrier() {
        requireUsable();
        if (ctx.store == null) {
            int[] ranks = exchangeOverNccl("barrier", new int[] {rank});
            for (int r = 0; r < ranks.length; r++) {
                if (ranks[r] != r) {
                    throw new IllegalStateException(who() + ": barrier on " + group.describe() + " gathered "
                            + Arrays.toString(ranks) + " instead of every member's rank in order: the "
                            + "members did not make the same NCCL calls");
                }
            }
            return;
        }
        try {
            ctx.store.barrier(KEY_PREFIX + "barrier/" + group.name(), rank, size(), ctx.timeout);
        } catch (StoreTimeoutException e) {
            List<Integer> missing = worldRanksOf(e.missing());
            throw ctx.watchdog.fail(new RankFailureException(who() + ": barrier on "
                    + group.describe() + ": rank(s) " + missing + " did not arrive within " + ctx.timeout.toMillis()
                    + " ms", missing, e));
        } catch (StoreException e) {
            throw storeLost("barrier", e);
        }
    }

    /**
     * Splits through {@code ncclCommSplit}, after the members have met in the store: each publishes its
     * color and key, so that a missing member is named rather than waited on, and every member knows the
     * new group's world ranks. Ordered by key, then by rank, as NCCL orders it.
     */
    @Override
    public Communicator split(int color, int key) {
        requireUsable();
        if (color < 0) {
            throw new IllegalArgumentException("split color must be non-negative, got " + color);
        }
        int round = splits++;
        List<int[]> entries = ctx.store == null ? splitEntriesOverNccl(color, key) : splitEntriesFromStore(round, color, key);
        List<int[]> mine = entries.stream().filter(x -> x[1] == color)
                .sorted(Comparator.<int[]>comparingInt(x -> x[2]).thenComparingInt(x -> x[0])).toList();
        List<Integer> childWorldRanks = mine.stream().map(x -> group.worldRank(x[0])).toList();
        int childRank = childWorldRanks.indexOf(ctx.worldRank);
        GroupMembers child = new GroupMembers(group.name() + "/s" + round + "c" + color, childWorldRanks);
        NcclEndpoint parent = guard.endpoint();
        PendingOperation op = ctx.watchdog.begin("ncclCommSplit", group, 1);
        // The helper thread, not this one, holds the rank's NCCL lock: if this thread gives up (the watchdog
        // failed the rank), the lock stays held until ncclCommSplit returns, so nothing is aborted under it
        // (with blocking communicators NCCL would free the parent under the running split).
        NcclEndpoint endpoint = ctx.callBounded(op, () -> guard.call(() -> parent.split(color, key), this::gone));
        EndpointGuard childGuard = new EndpointGuard(endpoint, child, ctx.ncclLock);
        ctx.watchdog.watch(childGuard);
        try {
            requireShape(endpoint, childRank, child.size(), "ncclCommSplit");
        } catch (RuntimeException ex) {
            ctx.watchdog.unwatch(childGuard);
            childGuard.destroy();
            throw ex;
        }
        LOG.debug("rank {}: split {} -> {}", ctx.worldRank, group.describe(), child.describe());
        return new NcclGroupCommunicator(ctx, childGuard, childRank, false, null);
    }

    /** Every member's {group rank, color, key}, met through the store (which names a member that does not come). */
    private List<int[]> splitEntriesFromStore(int round, int color, int key) {
        String base = KEY_PREFIX + "split/" + group.name() + "/" + round + "/";
        List<int[]> entries = new ArrayList<>(); // {group rank, color, key}
        try {
            ctx.store.set(base + rank, (color + " " + key).getBytes(StandardCharsets.US_ASCII));
            List<String> keys = new ArrayList<>();
            for (int r = 0; r < size(); r++) {
                keys.add(base + r);
            }
            ctx.store.waitFor(keys, ctx.timeout);
            for (int r = 0; r < size(); r++) {
                String[] parts = new String(ctx.store.get(base + r, ctx.timeout), StandardCharsets.US_ASCII).split(" ");
                entries.add(new int[] {r, Integer.parseInt(parts[0]), Integer.parseInt(parts[1])});
            }
        } catch (StoreTimeoutException e) {
            List<Integer> missing = worldRanksOf(e.missing());
            throw ctx.watchdog.fail(new RankFailureException(who() + ": split of " + group.describe()
                    + ": rank(s) " + missing + " did not arrive within " + ctx.timeout.toMillis() + " ms", missing, e));
        } catch (StoreException e) {
            throw storeLost("split", e);
        }
        return entries;
    }

    /** Every member's {group rank, color, key}, all-gathered over this communicator itself (no store). */
    private List<int[]> splitEntriesOverNccl(int color, int key) {
        int[] gathered = exchangeOverNccl("split agreement", new int[] {color, key});
        List<int[]> entries = new ArrayList<>();
        for (int r = 0; r < size(); r++) {
            entries.add(new int[] {r, gathered[2 * r], gathered[2 * r + 1]});
        }
        return entries;
    }

    /**
     * All-gathers {@code mine} (the same length on every member) over this communicator on the
     * communication stream and waits for the result on the host; the watchdog times it as any collective.
     * Coordination, not payload: not counted as traffic.
     */
    private int[] exchangeOverNccl(String what, int[] mine) {
        ExchangeBuffers x = ctx.exchange;
        int n = size();
        long bytes = (long) mine.length * Integer.BYTES;
        DevicePointer s = x.send().slice(0, bytes);
        DevicePointer r = x.recv().slice(0, bytes * n);
        NcclEndpoint e = guard.endpoint();
        PendingOperation op = enqueue(what, ctx.comm, 2, () -> {
            x.upload(mine, ctx.comm);
            e.allGather(s, r, mine.length, NcclDataType.INT32, ctx.comm);
            x.download(mine.length * n, ctx.comm);
        });
        try {
            ctx.awaitDevice(op);
        } finally {
            op.release();
        }
        return x.downloaded(mine.length * n);
    }

    @Override
    public TrafficCounter traffic() {
        return ctx.traffic;
    }

    /**
     * A split: frees its NCCL communicator. The world: waits (up to the timeout) for outstanding work,
     * then frees every communicator of the rank still open, the communication stream and the watchdog;
     * after a failure the communicators are aborted, never destroyed (that could wait on a dead peer).
     * Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        ctx.open.remove(this);
        if (!world) {
            end(guard);
            return;
        }
        try {
            for (NcclGroupCommunicator c : ctx.open) {
                c.close();
            }
            end(guard);
        } finally {
            ctx.watchdog.close();
            if (ownedStreams != null) {
                try {
                    ownedStreams.close();
                } catch (Exception e) {
                    LOG.warn("rank {}: freeing the communication stream (and exchange buffers) failed: {}", ctx.worldRank,
                            e.toString());
                }
            }
        }
    }

    private void end(EndpointGuard g) {
        ctx.watchdog.unwatch(g);
        if (ctx.awaitQuiet()) {
            g.destroy();
        } else if (!g.abort(ABORT_WAIT_MILLIS)) {
            LOG.warn("rank {}: {} is left neither aborted nor destroyed: an NCCL call that never returned is still "
                    + "inside it (aborting under a blocking call would free the communicator under it)", ctx.worldRank,
                    g.group().describe());
        }
    }

    /** How long close waits for a stuck NCCL call to leave a communicator before leaving it unaborted. */
    static final long ABORT_WAIT_MILLIS = 2_000;

    @Override
    public String toString() {
        return "NcclGroupCommunicator[rank " + rank + " of " + size() + ", " + group.describe() + "]";
    }

    // ---- helpers ----

    /** Calls NCCL for one operation under the endpoint's lock, timed by the watchdog; marks its work on {@code stream}. */
    private void enqueue(String what, DeviceStream stream, Runnable calls) {
        enqueue(what, stream, 1, calls);
    }

    private PendingOperation enqueue(String what, DeviceStream stream, int holders, Runnable calls) {
        PendingOperation op = ctx.watchdog.begin(what, group, holders);
        try {
            guard.run(calls, this::gone);
        } catch (RuntimeException | Error e) {
            ctx.watchdog.abandon(op);
            RankFailureException f = ctx.failed();
            if (f != null && !(e instanceof RankFailureException)) {
                f.addSuppressed(e); // the call failed because the watchdog aborted it: report why
                throw f;
            }
            if (e instanceof NcclException nccl) {
                // NCCL's rule after a failed call or group: abort every communicator in it. A group that failed
                // part-way may also have launched the calls before the failure, untimed, waiting on the peers.
                throw ctx.watchdog.fail(new RankFailureException(who() + ": NCCL " + what + " on " + group.describe()
                        + " failed: " + nccl.getMessage(), List.of(), nccl));
            }
            throw e;
        }
        op.enqueued(stream.mark());
        return op;
    }

    /** {@code ncclGroupStart}, the calls, {@code ncclGroupEnd}, which also runs when a call threw. */
    private static void grouped(NcclEndpoint e, Runnable calls) {
        e.groupStart();
        boolean ok = false;
        try {
            calls.run();
            ok = true;
        } finally {
            if (ok) {
                e.groupEnd();
            } else {
                try {
                    e.groupEnd();
                } catch (RuntimeException suppressed) {
                    LOG.debug("ncclGroupEnd after a failed call: {}", suppressed.toString());
                }
            }
        }
    }

    /** "rank 2 of 4", as the watchdog's messages begin. */
    private String who() {
        return "rank " + ctx.worldRank + " of " + ctx.worldSize;
    }

    private RuntimeException gone() {
        RankFailureException f = ctx.failed();
        return f != null ? f : new IllegalStateException(this + " has been aborted");
    }

    private void requireUsable() {
        if (closed) {
            throw new IllegalStateException("communicator of rank " + ctx.worldRank + " on " + group.describe()
                    + " is closed");
        }
        checkHealthy();
    }

    /** The device span of a contiguous tensor on this rank's device, or an IllegalArgumentException naming it. */
    private DevicePointer buffer(String operation, String name, Tensor t) {
        if (t == null) {
            throw new IllegalArgumentException(operation + ": " + name + " tensor is null");
        }
        if (!t.isDevice()) {
            throw new IllegalArgumentException(operation + ": " + name + " " + t.describe()
                    + " is in host memory; NCCL moves device tensors");
        }
        if (!t.isContiguous()) {
            throw new IllegalArgumentException(operation + ": " + name + " " + t.describe() + " must be contiguous");
        }
        if (t.devicePointer().device() != ctx.device) {
            throw new IllegalArgumentException(operation + ": " + name + " " + t.describe() + " is on device "
                    + t.devicePointer().device() + " but rank " + ctx.worldRank + " communicates on device " + ctx.device);
        }
        return t.contiguousDevicePointer();
    }

    private static void requireDisjoint(String operation, String aName, DevicePointer a, String bName, DevicePointer b) {
        if (a.byteSize() > 0 && b.byteSize() > 0 && a.address() < b.address() + b.byteSize()
                && b.address() < a.address() + a.byteSize()) {
            throw new IllegalArgumentException(operation + ": " + aName + " " + a + " overlaps " + bName + " " + b);
        }
    }

    private List<Integer> worldRanksOf(List<String> groupRankKeys) {
        List<Integer> ranks = new ArrayList<>();
        for (String k : groupRankKeys) {
            ranks.add(group.worldRank(Integer.parseInt(k.substring(k.lastIndexOf('/') + 1))));
        }
        return ranks;
    }

    private RankFailureException storeLost(String what, StoreException e) {
        return ctx.watchdog.fail(new RankFailureException(who() + ": " + what + " on "
                + group.describe() + ": the rendezvous store hosted by rank 0 is unreachable (" + e.getMessage()
                + "), so rank 0 is probably gone", ctx.worldRank == 0 ? List.of() : List.of(0), e));
    }

    private static void requireShape(NcclEndpoint e, int rank, int size, String call) {
        if (e.rank() != rank || e.size() != size) {
            throw new IllegalStateException(call + " made rank " + e.rank() + " of " + e.size() + ", expected rank "
                    + rank + " of " + size);
        }
    }

    private static List<Integer> range(int n) {
        List<Integer> list = new ArrayList<>(n);
        for (int i = 0; i < n; i++) {
            list.add(i);
        }
        return list;
    }

    private void orderComputeAfterComm(Throwable failure) {
        try {
            DeviceStream.DeviceMarker sent = ctx.comm.mark();
            try {
                ctx.compute.waitFor(sent);
            } finally {
                sent.close();
            }
        } catch (RuntimeException | Error e) {
            failure.addSuppressed(e);
        }
    }

    /** The handle {@link #sendRecv} returns: orders the compute stream after the transfer's done event. */
    private final class StreamTransfer implements Transfer {
        private final PendingOperation op;
        private boolean awaited;

        StreamTransfer(PendingOperation op) {
            this.op = op;
        }

        @Override
        public void await() {
            if (awaited) {
                return;
            }
            checkHealthy();
            op.orderAfter(ctx.compute);
            awaited = true;
            op.release();
        }

        /**
         * A failed rank's end of the exchange: its communicators are aborted by then (which ends NCCL's
         * kernels), and ordering the compute stream after the operation's marker keeps the stream-ordered
         * frees that follow behind whatever the copy stream had queued.
         */
        @Override
        public boolean cancel() {
            if (awaited) {
                return true;
            }
            awaited = true;
            try {
                op.orderAfter(ctx.compute);
                return true;
            } catch (RuntimeException e) {
                LOG.warn("could not order the compute stream after a cancelled transfer ({}): {}", op, e.toString());
                return false;
            } finally {
                op.release();
            }
        }
    }
}
