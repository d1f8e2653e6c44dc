package org.usp4j.sp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.usp4j.api.Mesh;
import org.usp4j.comm.local.LocalTransport;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * A rank that fails after posting its ring transfers must not free what a peer's copy still uses, and
 * must not leak the transfers' tokens. The transport here stands in for the GPU's: a receive only
 * enqueues its copy, which moves the bytes 300 ms later (as a copy stream would), and only waiting on
 * the copy's token orders anything after it; its tokens must be released exactly once each (as CUDA
 * events must be destroyed once), and every copy checks that the transport and both buffers are still
 * alive when it finally runs. On the GPU the same race crashed the JVM in {@code cuStreamWaitEvent}.
 */
class FailedRankRaceTest {

    private static final int RANKS = 4;
    private static final int FAILING_RANK = 2;
    private static final long COPY_DELAY_MILLIS = 300;

    /** A token with its remaining holders; released more often than held is a violation too. */
    private static final class Token {
        final AtomicInteger holders;
        volatile CompletableFuture<Void> copied; // a copy's token: done when its bytes have moved

        Token(int holders) {
            this.holders = new AtomicInteger(holders);
        }
    }

    /** Host copies that happen late, with tokens that are counted, and checks before every copy. */
    private static final class LateTransport implements LocalTransport {
        private final Queue<String> violations;
        private final Queue<Token> tokens;
        private volatile boolean closed;

        LateTransport(Queue<String> violations, Queue<Token> tokens) {
            this.violations = violations;
            this.tokens = tokens;
        }

        @Override
        public void requireBuffer(String operation, String name, Tensor t) {
            HOST.requireBuffer(operation, name, t);
        }

        @Override
        public void beforeCollective() {
        }

        @Override
        public void copy(Tensor src, long srcOffset, Tensor dst, long dstOffset, long bytes) {
            HOST.copy(src, srcOffset, dst, dstOffset, bytes);
        }

        @Override
        public void accumulate(Tensor src, long srcOffset, Tensor dst, long dstOffset, long bytes) {
            HOST.accumulate(src, srcOffset, dst, dstOffset, bytes);
        }

        @Override
        public void afterCollective() {
        }

        @Override
        public Object ready() {
            return token(1);
        }

        @Override
        public Object receive(List<Tensor> from, Object senderReady, List<Tensor> into, Object receiverReady) {
            requireLive("sender's ready token", senderReady);
            requireLive("receiver's ready token", receiverReady);
            // Like a copy stream: receive() only enqueues; the bytes move later, and whoever awaits the
            // returned token (awaitCopy) waits for that, as a stream waits on the copy's done event.
            Token done = token(2);
            done.copied = CompletableFuture.runAsync(() -> copy(from, into),
                    CompletableFuture.delayedExecutor(COPY_DELAY_MILLIS, TimeUnit.MILLISECONDS));
            return done;
        }

        private void copy(List<Tensor> from, List<Tensor> into) {
            if (closed) {
                violations.add("a copy ran on a closed transport");
            }
            for (int i = 0; i < from.size(); i++) {
                MemorySegment src = from.get(i).contiguousSegment();
                MemorySegment dst = into.get(i).contiguousSegment();
                if (!src.scope().isAlive() || !dst.scope().isAlive()) {
                    violations.add("a copy touched a freed buffer (" + (src.scope().isAlive() ? "destination"
                            : "source") + ")");
                    continue;
                }
                MemorySegment.copy(src, 0, dst, 0, src.byteSize());
            }
        }

        @Override
        public void awaitCopy(Object copied) {
            requireLive("copy token", copied);
            if (copied != null && ((Token) copied).copied != null) {
                ((Token) copied).copied.join();
            }
        }

        @Override
        public void release(Object token) {
            if (token != null && ((Token) token).holders.decrementAndGet() < 0) {
                violations.add("a token was released more often than it was held");
            }
        }

        void close() {
            closed = true;
        }

        private Token token(int holders) {
            Token t = new Token(holders);
            tokens.add(t);
            return t;
        }

        private void requireLive(String what, Object token) {
            if (token != null && ((Token) token).holders.get() <= 0) {
                violations.add("a " + what + " was used after its release");
            }
        }
    }

    /** The reference kernel, except that it fails on the chosen pass. */
    private record FailingKernel(AttentionKernel kernel, boolean failForward) implements AttentionKernel {
        @Override
        public void forward(Tensor q, Tensor k, Tensor v, Mask mask, float scale, Tensor out, Tensor lse) {
            if (failForward) {
                throw new IllegalStateException("injected kernel failure in the forward");
            }
            kernel.forward(q, k, v, mask, scale, out, lse);
        }

        @Override
        public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor lse, Mask mask,
                             float scale, Tensor dq, Tensor dk, Tensor dv, boolean accumulate) {
            throw new IllegalStateException("injected kernel failure in the backward");
        }
    }

    @ParameterizedTest(name = "fails in the {0}")
    @ValueSource(strings = {"forward", "backward"})
    void failedRankFreesNothingItsPeersStillUseAndLeaksNoToken(String pass) throws InterruptedException {
        Queue<String> violations = new ConcurrentLinkedQueue<>();
        Queue<Token> tokens = new ConcurrentLinkedQueue<>();
        List<LateTransport> transports = new ArrayList<>();
        for (int r = 0; r < RANKS; r++) {
            transports.add(new LateTransport(violations, tokens));
        }
        boolean failForward = pass.equals("forward");
        Mesh mesh = new Mesh(1, RANKS);
        AttentionOptions options = new AttentionOptions(false, SequenceLayout.CONTIGUOUS, null);
        List<CpuBackend> backends = new ArrayList<>();
        try (LocalWorld world = new LocalWorld(RANKS, Duration.ofSeconds(20), transports::get)) {
            Arena inputs = Arena.ofShared(); // the caller's dealt tensors, freed as soon as the run fails
            Tensor[] q = new Tensor[RANKS];
            for (int r = 0; r < RANKS; r++) {
                q[r] = Tensor.allocate(inputs, DType.F32, 1, 8, 2, 4);
                AttentionKernel kernel = new ReferenceAttention();
                backends.add(new CpuBackend(r == FAILING_RANK ? new FailingKernel(kernel, failForward) : kernel));
            }
            RuntimeException e = assertThrows(RuntimeException.class, () -> world.run((rank, comm) -> {
                try (MeshGroups groups = MeshGroups.split(mesh, comm)) {
                    RingAttention ring = new RingAttention(groups.ring(), backends.get(rank), options);
                    Tensor x = q[rank];
                    try (Forward f = ring.forward(x, x, x)) {
                        ring.backward(f, x).dq();
                    }
                }
                return null;
            }));
            assertTrue(e.getMessage().contains("injected kernel failure"), e.toString());
            // What a caller does next: free its inputs and close the ranks' devices.
            inputs.close();
            transports.forEach(LateTransport::close);
            Thread.sleep(2 * COPY_DELAY_MILLIS); // a copy the run did not wait for would land now
        }
        assertEquals(List.of(), List.copyOf(violations));
        long leaked = tokens.stream().filter(t -> t.holders.get() > 0).count();
        assertEquals(0, leaked, leaked + " of " + tokens.size() + " tokens were never released");
        for (CpuBackend b : backends) {
            assertEquals(0, b.liveBytes(), "scratch memory left allocated");
        }
    }
}
