package org.usp4j.comm.local;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import org.usp4j.tensor.Tensor;

/**
 * The memory shared by the members of one in-process group: one slot per rank for collectives, a
 * generation barrier, and a channel per (source, destination) pair for point-to-point messages.
 * Ranks make their calls in the same order, so the k-th message from a to b always meets b's k-th
 * receive from a: the channel pairs them in posting order, whichever thread later copies the bytes.
 */
final class LocalGroup {

    /**
     * A posted send: the sender's own buffers (ready after the sender's {@code ready} token), read by the
     * receiver, who then stores its copy's token in {@code copied} and releases the sender through
     * {@code taken}. Exactly one side decides the message's fate: the receiver {@link #claim claims} it
     * before it touches the buffers, or the failing sender {@link #withdraw withdraws} it first, after
     * which nobody reads them.
     */
    record Message(List<Tensor> tensors, Object ready, CountDownLatch taken, AtomicReference<Object> copied,
                   AtomicInteger state) {
        private static final int POSTED = 0, CLAIMED = 1, WITHDRAWN = 2;

        Message(List<Tensor> tensors, Object ready) {
            this(tensors, ready, new CountDownLatch(1), new AtomicReference<>(), new AtomicInteger(POSTED));
        }

        /** The receiver's right to read the buffers; false if the sender withdrew them. */
        boolean claim() {
            return state.compareAndSet(POSTED, CLAIMED);
        }

        /** The sender takes the buffers back; false if a receiver already claimed them. */
        boolean withdraw() {
            return state.compareAndSet(POSTED, WITHDRAWN);
        }
    }

    /** Pairs the sends and the receives of one (source, destination) pair in the order they were posted. */
    static final class Channel {
        private final ArrayDeque<Message> messages = new ArrayDeque<>();
        private final ArrayDeque<CompletableFuture<Message>> receivers = new ArrayDeque<>();

        synchronized void send(Message m) {
            messages.add(m);
            match();
        }

        synchronized CompletableFuture<Message> receive() {
            CompletableFuture<Message> f = new CompletableFuture<>();
            receivers.add(f);
            match();
            return f;
        }

        private void match() {
            while (!messages.isEmpty() && !receivers.isEmpty()) {
                receivers.poll().complete(messages.poll());
            }
        }
    }

    final LocalWorld world;
    private final int[] worldRanks;
    private final Object[] slots;
    private final boolean[] arrived;
    private int arrivedCount;
    private long generation;
    private final Channel[] channels; // index src * size + dst

    LocalGroup(LocalWorld world, int[] worldRanks) {
        this.world = world;
        this.worldRanks = worldRanks.clone();
        int n = worldRanks.length;
        this.slots = new Object[n];
        this.arrived = new boolean[n];
        this.channels = new Channel[n * n];
        for (int i = 0; i < channels.length; i++) {
            channels[i] = new Channel();
        }
    }

    int size() {
        return worldRanks.length;
    }

    int worldRank(int groupRank) {
        return worldRanks[groupRank];
    }

    String describe() {
        return "group of world ranks " + Arrays.toString(worldRanks);
    }

    /** Publishes a rank's contribution; visible to the others after the next {@link #barrier}. */
    synchronized void post(int rank, Object value) {
        slots[rank] = value;
    }

    synchronized Object slot(int rank) {
        return slots[rank];
    }

    Channel channel(int src, int dst) {
        return channels[src * size() + dst];
    }

    /**
     * Returns once every member has arrived. Fails when the world is aborted, or after the timeout with
     * a message naming the ranks that never arrived (and aborts the world so that they fail too).
     */
    synchronized void barrier(int rank, String operation) {
        long myGeneration = generation;
        arrived[rank] = true;
        if (++arrivedCount == size()) {
            arrivedCount = 0;
            Arrays.fill(arrived, false);
            generation++;
            notifyAll();
            return;
        }
        long deadline = System.nanoTime() + world.timeoutNanos();
        while (generation == myGeneration) {
            world.checkNotAborted(worldRank(rank), operation);
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                StringBuilder missing = new StringBuilder();
                for (int i = 0; i < size(); i++) {
                    if (!arrived[i]) {
                        missing.append(missing.isEmpty() ? "" : ", ").append(worldRank(i));
                    }
                }
                throw world.timedOut(worldRank(rank), operation + ": rank(s) [" + missing + "] of the "
                        + describe() + " never arrived");
            }
            try {
                wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(Math.min(left, LocalWorld.POLL_NANOS))));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new LocalCommunicationException("rank " + worldRank(rank) + " interrupted in " + operation, e);
            }
        }
    }
}
