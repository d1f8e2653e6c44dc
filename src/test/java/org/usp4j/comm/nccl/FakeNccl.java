package org.usp4j.comm.nccl;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Random;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.usp4j.nccl.NcclDataType;
import org.usp4j.nccl.NcclException;
import org.usp4j.nccl.NcclUniqueId;
import org.usp4j.tensor.DevicePointer;

/**
 * NCCL for in-process tests: ranks are threads, "device" memory is host memory (a {@link DevicePointer}'s
 * address is a native host address), and bytes move through one FIFO mailbox per (communicator, sender,
 * receiver), as NCCL matches sends and receives per peer pair in call order. Work runs on
 * {@link FakeStream}s in stream order; a receive waits for its message (or an abort). Every endpoint
 * records the calls made on it, so tests can see which NCCL operations a communicator chose.
 *
 * <p>A receive of another size than the matching send sets the endpoint's asynchronous error, as a
 * truncated message does in NCCL.
 */
final class FakeNccl {

    private final int worldSize;
    private final boolean nativeAllToAll;
    private final Map<String, LinkedBlockingQueue<byte[]>> mailboxes = new ConcurrentHashMap<>();
    private final Map<String, Meeting> meetings = new ConcurrentHashMap<>();
    private final AtomicInteger nextComm = new AtomicInteger(1);
    private final List<Endpoint> endpoints = Collections.synchronizedList(new ArrayList<>());
    /** The open group of the calling thread: its sends and its receives, in call order. */
    private final ThreadLocal<List<List<Runnable>>> group = new ThreadLocal<>();
    private final ThreadLocal<FakeStream> groupStream = new ThreadLocal<>();
    private volatile boolean killed;
    /** A rank whose splits never reach the meeting (a peer that froze before ncclCommSplit); -1 for none. */
    private volatile int stalledSplitter = -1;
    /**
     * Aborts that hit a communicator while a blocking call of the same rank (on it or on another of the rank's
     * communicators) was still inside: NCCL forbids any NCCL call in flight during ncclCommAbort, and with
     * blocking communicators the abort frees the communicator under a call on it.
     */
    final List<String> abortsUnderACall = Collections.synchronizedList(new ArrayList<>());

    FakeNccl(int worldSize, boolean nativeAllToAll) {
        this.worldSize = worldSize;
        this.nativeAllToAll = nativeAllToAll;
    }

    NcclEndpoint.Factory factory(int rank) {
        return new NcclEndpoint.Factory() {
            @Override
            public NcclUniqueId uniqueId() {
                byte[] id = new byte[NcclUniqueId.BYTES];
                new Random().nextBytes(id);
                return NcclUniqueId.fromBytes(id);
            }

            @Override
            public NcclEndpoint initRank(int nranks, NcclUniqueId id, int r) {
                if (nranks != worldSize || r != rank) {
                    throw new IllegalArgumentException("fake NCCL: init as rank " + r + " of " + nranks
                            + " by rank " + rank + " of " + worldSize);
                }
                Meeting m = meet("init", nranks, r, 0, 0, id.bytes(), null);
                for (byte[] other : m.payloads) {
                    if (!Arrays.equals(other, id.bytes())) {
                        throw new IllegalStateException("fake NCCL: the ranks passed different unique ids");
                    }
                }
                return register(new Endpoint(0, r, nranks, r));
            }

            @Override
            public void bindThread() {
            }

            @Override
            public String toString() {
                return "fake NCCL";
            }
        };
    }

    /** Every split of world rank {@code rank}'s endpoints waits until {@link #kill}, never meeting its peers. */
    void stallSplitsOf(int rank) {
        stalledSplitter = rank;
    }

    /** Ends every wait, as if the job were torn down (test cleanup). */
    void kill() {
        killed = true;
    }

    /** Endpoints neither destroyed nor aborted. */
    List<Endpoint> live() {
        synchronized (endpoints) {
            return endpoints.stream().filter(e -> !e.destroyed && !e.aborted).toList();
        }
    }

    List<Endpoint> endpoints() {
        synchronized (endpoints) {
            return List.copyOf(endpoints);
        }
    }

    private Endpoint register(Endpoint e) {
        endpoints.add(e);
        return e;
    }

    /** Where the parties of one init or split meet: all deposit, all wait for all. */
    private static final class Meeting {
        final int[] colors;
        final int[] keys;
        final byte[][] payloads;
        final Map<Integer, Integer> commOfColor = new HashMap<>();
        int arrived;

        Meeting(int n) {
            colors = new int[n];
            keys = new int[n];
            payloads = new byte[n][];
        }
    }

    private Meeting meet(String name, int n, int rank, int color, int key, byte[] payload, Endpoint waiter) {
        Meeting m = meetings.computeIfAbsent(name, k -> new Meeting(n));
        synchronized (m) {
            m.colors[rank] = color;
            m.keys[rank] = key;
            m.payloads[rank] = payload;
            m.arrived++;
            m.notifyAll();
            while (m.arrived < n) {
                if (killed || waiter != null && waiter.aborted) {
                    throw new IllegalStateException("fake NCCL: " + name + " aborted while waiting");
                }
                try {
                    m.wait(10);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("fake NCCL: interrupted in " + name, e);
                }
            }
            return m;
        }
    }

    private LinkedBlockingQueue<byte[]> mailbox(int comm, int from, int to) {
        return mailboxes.computeIfAbsent(comm + ":" + from + ">" + to, k -> new LinkedBlockingQueue<>());
    }

    private static MemorySegment memory(DevicePointer p) {
        return MemorySegment.ofAddress(p.address()).reinterpret(p.byteSize());
    }

    /** One rank's handle on one fake communicator. */
    final class Endpoint implements NcclEndpoint {
        final int comm;
        final int rank;
        final int size;
        /** The world rank whose endpoint this is. */
        final int worldRank;
        final List<String> calls = Collections.synchronizedList(new ArrayList<>());
        volatile boolean aborted;
        volatile boolean destroyed;
        volatile RuntimeException asyncError;
        /** Thrown by the next groupEnd (after it launched the group), as NCCL reports a failed group; then cleared. */
        volatile NcclException groupEndFailure;
        /** The call a thread is inside (one that may block: collective, group end, split), or null. */
        volatile String inside;
        private int splitRounds;

        Endpoint(int comm, int rank, int size, int worldRank) {
            this.comm = comm;
            this.rank = rank;
            this.size = size;
            this.worldRank = worldRank;
        }

        private <T> T inside(String call, java.util.function.Supplier<T> body) {
            inside = call;
            try {
                return body.get();
            } finally {
                inside = null;
            }
        }

        private void inside(String call, Runnable body) {
            inside(call, () -> {
                body.run();
                return null;
            });
        }

        @Override
        public int rank() {
            return rank;
        }

        @Override
        public int size() {
            return size;
        }

        @Override
        public boolean hasNativeAllToAll() {
            return nativeAllToAll;
        }

        @Override
        public void allToAll(DevicePointer send, DevicePointer recv, long count, NcclDataType type, DeviceStream stream) {
            calls.add("allToAll " + count + "x" + type + " on " + stream);
            long block = count * type.byteSize();
            inside("allToAll", () -> run(stream, false, () -> {
                for (int p = 0; p < size; p++) {
                    post(send.slice(p * block, block), p);
                }
                for (int p = 0; p < size; p++) {
                    take(recv.slice(p * block, block), p);
                }
            }));
        }

        @Override
        public void allGather(DevicePointer send, DevicePointer recv, long count, NcclDataType type, DeviceStream stream) {
            calls.add("allGather " + count + "x" + type + " on " + stream);
            long block = count * type.byteSize();
            inside("allGather", () -> run(stream, false, () -> {
                for (int p = 0; p < size; p++) {
                    post(send.slice(0, block), p);
                }
                for (int p = 0; p < size; p++) {
                    take(recv.slice(p * block, block), p);
                }
            }));
        }

        @Override
        public void reduceScatterSum(DevicePointer send, DevicePointer recv, long recvCount, DeviceStream stream) {
            calls.add("reduceScatter " + recvCount + "xFLOAT32 on " + stream);
            long block = recvCount * Float.BYTES;
            inside("reduceScatter", () -> run(stream, false, () -> {
                for (int p = 0; p < size; p++) {
                    post(send.slice(p * block, block), p);
                }
                MemorySegment out = memory(recv.slice(0, block));
                for (int p = 0; p < size; p++) {
                    MemorySegment part = MemorySegment.ofArray(received(p));
                    for (long i = 0; i < recvCount; i++) {
                        float before = p == 0 ? 0f : out.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
                        out.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i,
                                before + part.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i));
                    }
                }
            }));
        }

        @Override
        public void send(DevicePointer buffer, long count, NcclDataType type, int peer, DeviceStream stream) {
            calls.add("send " + count + "x" + type + " to " + peer + " on " + stream);
            DevicePointer b = buffer.slice(0, count * type.byteSize());
            run(stream, false, () -> post(b, peer));
        }

        @Override
        public void recv(DevicePointer buffer, long count, NcclDataType type, int peer, DeviceStream stream) {
            calls.add("recv " + count + "x" + type + " from " + peer + " on " + stream);
            DevicePointer b = buffer.slice(0, count * type.byteSize());
            run(stream, true, () -> take(b, peer));
        }

        @Override
        public void groupStart() {
            calls.add("groupStart");
            group.set(List.of(new ArrayList<>(), new ArrayList<>()));
        }

        /** Sends first, then receives: a group never deadlocks on its own order, as in NCCL. */
        @Override
        public void groupEnd() {
            calls.add("groupEnd");
            List<List<Runnable>> ops = group.get();
            FakeStream stream = groupStream.get();
            group.remove();
            groupStream.remove();
            if (ops == null || stream == null) {
                return;
            }
            inside("groupEnd", () -> stream.enqueue(() -> {
                ops.get(0).forEach(Runnable::run);
                ops.get(1).forEach(Runnable::run);
            }));
            NcclException failure = groupEndFailure;
            if (failure != null) {
                groupEndFailure = null;
                throw failure;
            }
        }

        @Override
        public Optional<RuntimeException> asyncError() {
            return Optional.ofNullable(asyncError);
        }

        @Override
        public NcclEndpoint split(int color, int key) {
            calls.add("split color " + color + " key " + key);
            return inside("split", () -> splitInside(color, key));
        }

        private NcclEndpoint splitInside(int color, int key) {
            if (comm == 0 && rank == stalledSplitter) {
                while (!killed) {
                    try {
                        Thread.sleep(5);
                    } catch (InterruptedException e) {
                        Thread.currentThread().interrupt();
                        break;
                    }
                }
                throw new IllegalStateException("fake NCCL: split of rank " + rank + " ended by the job's teardown");
            }
            Meeting m = meet("split/" + comm + "/" + splitRounds++, size, rank, color, key, null, this);
            List<Integer> members = new ArrayList<>();
            for (int r = 0; r < size; r++) {
                if (m.colors[r] == color) {
                    members.add(r);
                }
            }
            members.sort(Comparator.<Integer>comparingInt(r -> m.keys[r]).thenComparingInt(r -> r));
            int child;
            synchronized (m) {
                child = m.commOfColor.computeIfAbsent(color, c -> nextComm.getAndIncrement());
            }
            return register(new Endpoint(child, members.indexOf(rank), members.size(), worldRank));
        }

        @Override
        public void abort() {
            calls.add("abort");
            for (Endpoint e : endpoints()) {
                String call = e.inside;
                if (e.worldRank == worldRank && call != null) {
                    abortsUnderACall.add("comm " + comm + " of world rank " + worldRank + " aborted while " + call
                            + " on comm " + e.comm + " was inside");
                }
            }
            aborted = true;
        }

        @Override
        public void destroy() {
            calls.add("destroy");
            destroyed = true;
        }

        /** Inside a group: held until groupEnd (sends ahead of receives); else enqueued now. */
        private void run(DeviceStream s, boolean receive, Runnable work) {
            FakeStream stream = (FakeStream) s;
            List<List<Runnable>> ops = group.get();
            if (ops == null) {
                stream.enqueue(work);
                return;
            }
            FakeStream previous = groupStream.get();
            if (previous != null && previous != stream) {
                throw new IllegalStateException("fake NCCL: one group on two streams");
            }
            groupStream.set(stream);
            ops.get(receive ? 1 : 0).add(work);
        }

        private void post(DevicePointer from, int peer) {
            requireAlive();
            mailbox(comm, rank, peer).add(memory(from).toArray(ValueLayout.JAVA_BYTE));
        }

        private void take(DevicePointer into, int peer) {
            byte[] bytes = received(peer);
            if (bytes.length != into.byteSize()) {
                asyncError = new IllegalStateException("fake NCCL: rank " + peer + " sent " + bytes.length
                        + " bytes but rank " + rank + " receives " + into.byteSize() + " (message truncated)");
                return;
            }
            MemorySegment.copy(MemorySegment.ofArray(bytes), 0, memory(into), 0, bytes.length);
        }

        private byte[] received(int peer) {
            LinkedBlockingQueue<byte[]> box = mailbox(comm, peer, rank);
            byte[] bytes = null;
            while (bytes == null) {
                requireAlive();
                try {
                    bytes = box.poll(5, TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IllegalStateException("fake NCCL: interrupted", e);
                }
            }
            return bytes;
        }

        private void requireAlive() {
            if (aborted || killed) {
                throw new IllegalStateException("fake NCCL: communicator " + comm + " of rank " + rank + " aborted");
            }
        }

        @Override
        public String toString() {
            return "fake endpoint comm " + comm + " rank " + rank + " of " + size;
        }
    }
}
