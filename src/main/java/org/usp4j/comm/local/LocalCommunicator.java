package org.usp4j.comm.local;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicBoolean;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficCounter;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.Transfer;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * One rank's handle on an in-process group (see {@link LocalWorld}). Collectives are synchronous: each
 * rank publishes its buffer, waits for the others, pulls what it receives, and waits again so nobody
 * reuses a buffer that a peer is still reading. Point-to-point receives are copied by a background
 * thread, so the caller computes while the bytes move.
 *
 * <p>Accounting: a rank is charged for the bytes its peers receive from it; its copies to itself are
 * free. All-to-all: (size-1)/size of the send buffer; all-gather: (size-1) times the send buffer;
 * send/recv: each tensor sent to another rank.
 */
public final class LocalCommunicator implements Communicator {

    private final LocalGroup group;
    private final int rank;
    private final TrafficCounter traffic;
    private final LocalTransport transport;
    private volatile boolean closed;

    LocalCommunicator(LocalGroup group, int rank, TrafficCounter traffic, LocalTransport transport) {
        this.group = group;
        this.rank = rank;
        this.traffic = traffic;
        this.transport = transport;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return group.size();
    }

    /** This rank's rank in the world it was split from (error messages use world ranks). */
    public int worldRank() {
        return group.worldRank(rank);
    }

    @Override
    public void allToAll(Tensor send, Tensor recv) {
        requireOpen();
        requireBuffer("allToAll", "send", send);
        requireBuffer("allToAll", "recv", recv);
        if (send.dtype() != recv.dtype() || send.numel() != recv.numel()) {
            throw new IllegalArgumentException("allToAll needs send and recv of equal dtype and size, got "
                    + send.describe() + " and " + recv.describe());
        }
        int n = size();
        if (send.numel() % n != 0) {
            throw new IllegalArgumentException("allToAll: " + send.numel() + " elements do not split into "
                    + n + " equal blocks");
        }
        long block = send.byteSize() / n;
        transport.beforeCollective();
        group.post(rank, send);
        group.barrier(rank, "allToAll");
        try {
            for (int i = 0; i < n; i++) {
                Tensor peer = requireSameSize("allToAll", send, i);
                transport.copy(peer, rank * block, recv, i * block, block);
            }
            transport.afterCollective();
        } finally {
            group.barrier(rank, "allToAll");
        }
        traffic.add(TrafficKind.ALL_TO_ALL, (n - 1) * block);
    }

    @Override
    public void allGather(Tensor send, Tensor recv) {
        requireOpen();
        requireBuffer("allGather", "send", send);
        requireBuffer("allGather", "recv", recv);
        int n = size();
        if (send.dtype() != recv.dtype() || recv.numel() != send.numel() * n) {
            throw new IllegalArgumentException("allGather over " + n + " ranks needs recv of " + n
                    + " x send's elements and the same dtype, got " + send.describe() + " and " + recv.describe());
        }
        long block = send.byteSize();
        transport.beforeCollective();
        group.post(rank, send);
        group.barrier(rank, "allGather");
        try {
            for (int i = 0; i < n; i++) {
                Tensor peer = requireSameSize("allGather", send, i);
                transport.copy(peer, 0, recv, i * block, block);
            }
            transport.afterCollective();
        } finally {
            group.barrier(rank, "allGather");
        }
        traffic.add(TrafficKind.ALL_GATHER, (n - 1) * block);
    }

    @Override
    public void reduceScatter(Tensor send, Tensor recv) {
        requireOpen();
        requireBuffer("reduceScatter", "send", send);
        requireBuffer("reduceScatter", "recv", recv);
        int n = size();
        if (send.dtype() != DType.F32 || recv.dtype() != DType.F32 || send.numel() != recv.numel() * n) {
            throw new IllegalArgumentException("reduceScatter over " + n + " ranks needs F32 send of " + n
                    + " x recv's elements, got " + send.describe() + " and " + recv.describe());
        }
        long block = recv.byteSize();
        transport.beforeCollective();
        group.post(rank, send);
        group.barrier(rank, "reduceScatter");
        try {
            // Rank order on every rank, so that every block is summed the same way.
            for (int i = 0; i < n; i++) {
                Tensor peer = requireSameSize("reduceScatter", send, i);
                if (i == 0) {
                    transport.copy(peer, rank * block, recv, 0, block);
                } else {
                    transport.accumulate(peer, rank * block, recv, 0, block);
                }
            }
            transport.afterCollective();
        } finally {
            group.barrier(rank, "reduceScatter");
        }
        traffic.add(TrafficKind.REDUCE_SCATTER, (n - 1) * block);
    }

    @Override
    public Transfer sendRecv(List<Tensor> sends, int dst, List<Tensor> recvs, int src) {
        requireOpen();
        Objects.checkIndex(dst, size());
        Objects.checkIndex(src, size());
        List<Tensor> out = List.copyOf(sends);
        List<Tensor> in = List.copyOf(recvs);
        out.forEach(t -> requireBuffer("sendRecv", "send", t));
        in.forEach(t -> requireBuffer("sendRecv", "recv", t));
        group.world.checkNotAborted(worldRank(), "sendRecv");
        LocalGroup.Message message = null;
        if (!out.isEmpty()) {
            message = new LocalGroup.Message(out, transport.ready());
            group.channel(rank, dst).send(message);
            if (dst != rank) {
                traffic.add(TrafficKind.P2P, out.stream().mapToLong(Tensor::byteSize).sum());
            }
        }
        AtomicBoolean abandoned = new AtomicBoolean();
        Future<Object> receive = null;
        if (!in.isEmpty()) {
            // Claim the next message from src now, in program order; the copy runs in the background.
            CompletableFuture<LocalGroup.Message> match = group.channel(src, rank).receive();
            Object receiverReady = transport.ready();
            receive = group.world.submitCopy(() -> receive(src, match, in, receiverReady, abandoned));
        }
        LocalTransfer transfer = new LocalTransfer(message, dst, receive, src, abandoned);
        group.world.opened(transfer);
        return transfer;
    }

    @Override
    public void barrier() {
        requireOpen();
        group.barrier(rank, "barrier");
    }

    @Override
    public Communicator split(int color, int key) {
        requireOpen();
        if (color < 0) {
            throw new IllegalArgumentException("split color must be non-negative, got " + color);
        }
        int n = size();
        group.post(rank, new int[] {color, key});
        group.barrier(rank, "split");
        int[][] all = new int[n][];
        for (int i = 0; i < n; i++) {
            all[i] = (int[]) group.slot(i);
        }
        group.barrier(rank, "split");
        List<Integer> members = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            if (all[i][0] == color) {
                members.add(i);
            }
        }
        members.sort((a, b) -> all[a][1] != all[b][1] ? Integer.compare(all[a][1], all[b][1]) : Integer.compare(a, b));
        int leader = members.get(0);
        if (rank == leader) {
            group.post(rank, new LocalGroup(group.world, members.stream().mapToInt(group::worldRank).toArray()));
        }
        group.barrier(rank, "split");
        LocalGroup sub = (LocalGroup) group.slot(leader);
        group.barrier(rank, "split");
        return new LocalCommunicator(sub, members.indexOf(rank), traffic, transport);
    }

    @Override
    public TrafficCounter traffic() {
        return traffic;
    }

    @Override
    public void close() {
        closed = true;
    }

    @Override
    public String toString() {
        return "LocalCommunicator[rank " + rank + " of " + size() + ", world rank " + worldRank() + "]";
    }

    // Runs on a copy thread: waits for the matching message, claims it, copies it, releases the sender.
    // Returns the copy's token (null on the host). The receiver's ready token is released on every path.
    private Object receive(int src, CompletableFuture<LocalGroup.Message> match, List<Tensor> into,
                           Object receiverReady, AtomicBoolean abandoned) throws InterruptedException, ExecutionException {
        try {
            LocalGroup.Message m = null;
            while (m == null) {
                if (abandoned.get()) {
                    return null;
                }
                group.world.checkNotAborted(worldRank(), "sendRecv");
                try {
                    m = match.get(LocalWorld.POLL_NANOS, TimeUnit.NANOSECONDS);
                } catch (TimeoutException e) {
                    // not yet sent: look at the abort flag again
                }
            }
            if (abandoned.get()) {
                return null; // left unclaimed: the sender withdraws it when it cancels
            }
            if (!m.claim()) {
                awaitAbortOf(src); // the sender withdrew because it is failing: report its error, not this
                throw new LocalCommunicationException("rank " + worldRank() + ": rank " + group.worldRank(src)
                        + " withdrew its send (it failed before the copy started)");
            }
            try {
                List<Tensor> from = m.tensors();
                long[] sent = from.stream().mapToLong(Tensor::byteSize).toArray();
                long[] expected = into.stream().mapToLong(Tensor::byteSize).toArray();
                if (!Arrays.equals(sent, expected)) {
                    throw new IllegalArgumentException("sendRecv: rank " + group.worldRank(src) + " sent tensors of "
                            + Arrays.toString(sent) + " bytes but rank " + worldRank() + " expects "
                            + Arrays.toString(expected));
                }
                Object copied = transport.receive(from, m.ready(), into, receiverReady);
                m.copied().set(copied);
                return copied;
            } finally {
                m.taken().countDown(); // the sender may now reuse its buffers (after the copied token)
            }
        } finally {
            transport.release(receiverReady);
        }
    }

    /** Waits (up to the timeout) for the world abort that a withdrawing sender is about to raise, and throws it. */
    private void awaitAbortOf(int src) throws InterruptedException {
        long deadline = System.nanoTime() + group.world.timeoutNanos();
        while (System.nanoTime() - deadline < 0) {
            group.world.checkNotAborted(worldRank(), "sendRecv from rank " + group.worldRank(src));
            TimeUnit.NANOSECONDS.sleep(LocalWorld.POLL_NANOS);
        }
    }

    /**
     * The handle {@link #sendRecv} returns: waits for our receive and for the peer taking our send. Each
     * half (receive, send) is settled once, by {@link #await} or by {@link #cancel}, which also release
     * the half's tokens; the world cancels what a failed rank left open.
     */
    final class LocalTransfer implements Transfer {
        private final LocalGroup.Message sent;
        private final int dst;
        private final Future<Object> receive;
        private final int src;
        private final AtomicBoolean abandoned;
        private boolean receiveSettled;
        private boolean sendSettled;
        private boolean ended;
        private boolean cancelled;

        LocalTransfer(LocalGroup.Message sent, int dst, Future<Object> receive, int src, AtomicBoolean abandoned) {
            this.sent = sent;
            this.dst = dst;
            this.receive = receive;
            this.src = src;
            this.abandoned = abandoned;
            this.receiveSettled = receive == null;
            this.sendSettled = sent == null;
        }

        @Override
        public synchronized void await() {
            if (cancelled) {
                throw new IllegalStateException("this transfer was cancelled: its data never arrived");
            }
            if (ended) {
                return;
            }
            long deadline = System.nanoTime() + group.world.timeoutNanos();
            try {
                if (!receiveSettled) {
                    awaitReceive(deadline);
                }
                if (!sendSettled) {
                    awaitTaken(deadline);
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                abandoned.set(true);
                throw new LocalCommunicationException("rank " + worldRank() + " interrupted in sendRecv", e);
            }
            end();
        }

        @Override
        public synchronized boolean cancel() {
            if (ended) {
                return true;
            }
            cancelled = true;
            abandoned.set(true);
            long deadline = System.nanoTime() + group.world.timeoutNanos();
            boolean idle = true;
            if (!receiveSettled) {
                idle &= cancelReceive(deadline);
            }
            if (!sendSettled) {
                idle &= cancelSend(deadline);
            }
            end();
            if (!idle) {
                LocalWorld.LOG.warn("rank {}: a transfer with rank {} / rank {} did not settle within {} ms; its"
                        + " buffers stay allocated", worldRank(), group.worldRank(dst), group.worldRank(src),
                        TimeUnit.NANOSECONDS.toMillis(group.world.timeoutNanos()));
            }
            return idle;
        }

        /** Whether {@link #await} or {@link #cancel} has ended this transfer. */
        synchronized boolean isEnded() {
            return ended;
        }

        private void end() {
            ended = true;
            group.world.closed(this);
        }

        private void awaitReceive(long deadline) throws InterruptedException {
            while (true) {
                try {
                    Object copied = receive.get(LocalWorld.POLL_NANOS, TimeUnit.NANOSECONDS);
                    receiveSettled = true;
                    orderAfter(copied); // my later work reads what landed
                    return;
                } catch (TimeoutException e) {
                    group.world.checkNotAborted(worldRank(), "sendRecv");
                    if (System.nanoTime() - deadline >= 0) {
                        abandoned.set(true);
                        throw group.world.timedOut(worldRank(), "sendRecv waiting for rank "
                                + group.worldRank(src) + " to send");
                    }
                } catch (ExecutionException e) {
                    receiveSettled = true; // the copy task ended without a copy in flight
                    Throwable cause = e.getCause();
                    if (cause instanceof RuntimeException re) {
                        throw re;
                    }
                    throw new LocalCommunicationException("rank " + worldRank() + ": receive from rank "
                            + group.worldRank(src) + " failed", cause);
                }
            }
        }

        private void awaitTaken(long deadline) throws InterruptedException {
            while (!sent.taken().await(LocalWorld.POLL_NANOS, TimeUnit.NANOSECONDS)) {
                group.world.checkNotAborted(worldRank(), "sendRecv");
                if (System.nanoTime() - deadline >= 0) {
                    throw group.world.timedOut(worldRank(), "sendRecv waiting for rank "
                            + group.worldRank(dst) + " to receive");
                }
            }
            sendSettled = true;
            transport.release(sent.ready());
            orderAfter(sent.copied().get()); // my later writes to the sent buffers come after the peer read them
        }

        private boolean cancelReceive(long deadline) {
            try {
                Object copied = receive.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
                receiveSettled = true;
                return orderAfterQuietly(copied);
            } catch (ExecutionException e) {
                receiveSettled = true;
                return true;
            } catch (TimeoutException | CancellationException e) {
                return false; // the copy task may still run
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
        }

        private boolean cancelSend(long deadline) {
            if (sent.withdraw()) {
                sendSettled = true;
                transport.release(sent.ready()); // no receiver will wait on it
                return true;
            }
            try {
                if (!sent.taken().await(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS)) {
                    return false; // the receiver may still wait on my ready token: leak it
                }
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return false;
            }
            sendSettled = true;
            transport.release(sent.ready());
            return orderAfterQuietly(sent.copied().get());
        }

        private void orderAfter(Object copied) {
            try {
                transport.awaitCopy(copied);
            } finally {
                transport.release(copied);
            }
        }

        private boolean orderAfterQuietly(Object copied) {
            try {
                orderAfter(copied);
                return true;
            } catch (RuntimeException e) {
                LocalWorld.LOG.warn("rank {}: could not order later work after a cancelled transfer: {}",
                        worldRank(), e.toString());
                return false;
            }
        }
    }

    private Tensor requireSameSize(String operation, Tensor mine, int peerRank) {
        Tensor peer = (Tensor) group.slot(peerRank);
        if (peer.byteSize() != mine.byteSize() || peer.dtype() != mine.dtype()) {
            throw new IllegalArgumentException(operation + ": rank " + group.worldRank(peerRank) + " passed "
                    + peer.describe() + " but rank " + worldRank() + " passed " + mine.describe());
        }
        return peer;
    }

    private void requireOpen() {
        if (closed) {
            throw new IllegalStateException("communicator of rank " + rank + " (world rank " + worldRank()
                    + ") is closed");
        }
    }

    private void requireBuffer(String operation, String name, Tensor t) {
        Objects.requireNonNull(t, name);
        transport.requireBuffer(operation, name, t);
    }
}
