package org.usp4j.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CompletionException;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.Tensor;

/**
 * Bad input is refused with an {@link IllegalArgumentException} naming the values before any rank
 * communicates; misuse of the lifecycle (use after close, a rank's objects from another thread, backward
 * without forward) with an {@link IllegalStateException}; failures surface as documented.
 */
class ApiValidationTest {

    private static final long B = 1, S = 16, H = 4, D = 8;
    private static final Mesh MESH = new Mesh(2, 1);

    /** Inputs of one rank: q, k, v, out, dout, dq, dk, dv, all F32 [1, 8, 4, 8] in a shared arena. */
    private record Local(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor dq, Tensor dk, Tensor dv) {
        static Local allocate(Arena arena, long seed) {
            long sl = S / MESH.size();
            return new Local(GlobalAttention.random(arena, DType.F32, seed, B, sl, H, D),
                    GlobalAttention.random(arena, DType.F32, seed + 1, B, sl, H, D),
                    GlobalAttention.random(arena, DType.F32, seed + 2, B, sl, H, D),
                    Tensor.allocate(arena, DType.F32, B, sl, H, D),
                    GlobalAttention.random(arena, DType.F32, seed + 3, B, sl, H, D),
                    Tensor.allocate(arena, DType.F32, B, sl, H, D),
                    Tensor.allocate(arena, DType.F32, B, sl, H, D),
                    Tensor.allocate(arena, DType.F32, B, sl, H, D));
        }
    }

    /** The layer kinds every refusal is checked on: softmax attention and linear attention (LASP-2). */
    private static final List<Function<RankContext, SequenceParallelLayer>> KINDS = List.of(
            rank -> rank.newAttention(MESH, AttentionOptions.defaults()),
            rank -> rank.newLinearAttention(MESH, LinearAttentionOptions.causal(0.9)));

    /**
     * Every rank makes the call {@code call} on a layer of each kind; each must refuse it with an IAE whose
     * message has {@code expected}.
     */
    private static void refusedOnEveryRank(String expected, Consumer<SequenceParallelLayer> call) {
        for (Function<RankContext, SequenceParallelLayer> kind : KINDS) {
            try (InProcessWorld world = Usp4j.cpuWorld(MESH.size())) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> world.run(rank -> {
                    try (SequenceParallelLayer layer = kind.apply(rank)) {
                        call.accept(layer);
                    }
                    return null;
                }));
                assertTrue(e.getMessage().contains(expected), () -> "message '" + e.getMessage() + "' lacks '" + expected + "'");
            }
        }
    }

    @Test
    void badTensorsAreRefusedNamingTheValues() {
        try (Arena arena = Arena.ofShared()) {
            Local x = Local.allocate(arena, 1);
            long sl = S / MESH.size();
            Tensor bf16 = Tensor.allocate(arena, DType.BF16, B, sl, H, D);
            refusedOnEveryRank("one dtype, got F32, BF16, F32", l -> l.forward(x.q(), bf16, x.v(), x.out()));
            refusedOnEveryRank("out has shape [1, 8, 4, 4], expected [1, 8, 4, 8]",
                    l -> l.forward(x.q(), x.k(), x.v(), Tensor.allocate(arena, DType.F32, B, sl, H, 4)));
            refusedOnEveryRank("out must be F32 like q, got BF16", l -> l.forward(x.q(), x.k(), x.v(), bf16));
            refusedOnEveryRank("out and q start at the same memory", l -> l.forward(x.q(), x.k(), x.v(), x.q()));
            refusedOnEveryRank("query heads h = 3 are not divisible by the Ulysses degree U = 2",
                    l -> l.forward(Tensor.allocate(arena, DType.F32, B, sl, 3, D), Tensor.allocate(arena, DType.F32, B, sl, 1, D),
                            Tensor.allocate(arena, DType.F32, B, sl, 1, D), Tensor.allocate(arena, DType.F32, B, sl, 3, D)));
            Tensor headsInner = Tensor.allocate(arena, DType.F32, B, sl, D, H).transpose(2, 3); // [b, s, h, d], d strided
            refusedOnEveryRank("head_dim must be contiguous", l -> l.forward(x.q(), x.k(), headsInner, x.out()));
            refusedOnEveryRank("is read-only", l -> {
                Tensor readOnly = Tensor.host(x.out().segment().asReadOnly(), DType.F32, x.out().shape());
                l.forward(x.q(), x.k(), x.v(), readOnly);
            });
            refusedOnEveryRank("dk has shape [1, 8, 2, 8], expected [1, 8, 4, 8]", l -> {
                l.forward(x.q(), x.k(), x.v(), x.out());
                l.backward(x.dout(), x.dq(), Tensor.allocate(arena, DType.F32, B, sl, 2, D), x.dv());
            });
            refusedOnEveryRank("dk and dv start at the same memory", l -> {
                l.forward(x.q(), x.k(), x.v(), x.out());
                l.backward(x.dout(), x.dq(), x.dk(), x.dk());
            });
        }
    }

    @Test
    void memoryInTheWrongPlaceIsRefused() {
        try (Arena arena = Arena.ofShared()) {
            Local x = Local.allocate(arena, 2);
            Tensor onDevice = Tensor.device(new DevicePointer(0x7f0000000000L, 1 << 20, 0), DType.F32, x.q().shape());
            refusedOnEveryRank("q F32[1, 8, 4, 8]@cuda:0 is device memory, but this rank computes on the CPU",
                    l -> l.forward(onDevice, x.k(), x.v(), x.out()));
            Arena closed = Arena.ofShared();
            Tensor freed = Tensor.allocate(closed, DType.F32, x.k().shape());
            closed.close();
            refusedOnEveryRank("k F32[1, 8, 4, 8]@host views freed memory", l -> l.forward(x.q(), freed, x.v(), x.out()));
            refusedOnEveryRank("lives in a confined arena", l -> {
                try (Arena confined = Arena.ofConfined()) {
                    l.forward(x.q(), x.k(), x.v(), Tensor.allocate(confined, DType.F32, x.out().shape()));
                }
            });
        }
    }

    @Test
    void inputsFreedBeforeTheBackwardAreRefused() {
        try (Arena arena = Arena.ofShared()) {
            Local x = Local.allocate(arena, 3);
            refusedOnEveryRank("the forward's q F32[1, 8, 4, 8]@host was freed before the backward", l -> {
                Arena shortLived = Arena.ofShared();
                Tensor q = Tensor.allocate(shortLived, DType.F32, x.q().shape());
                l.forward(q, x.k(), x.v(), x.out());
                shortLived.close();
                l.backward(x.dout(), x.dq(), x.dk(), x.dv());
            });
        }
    }

    @Test
    void oneRankRefusingItsInputFailsTheWorldAtOnceAndForGood() {
        try (Arena arena = Arena.ofShared(); InProcessWorld world = Usp4j.cpuWorld(2, Duration.ofSeconds(30))) {
            Local good = Local.allocate(arena, 4);
            long start = System.nanoTime();
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> world.run(rank -> {
                try (AttentionLayer layer = rank.newAttention(MESH, AttentionOptions.defaults())) {
                    Tensor out = rank.rank() == 1 ? good.q() : good.out(); // rank 1 passes out == q
                    layer.forward(good.q(), good.k(), good.v(), out);
                }
                return null;
            }));
            assertTrue(e.getMessage().contains("out and q"), e::getMessage);
            // Rank 0 was waiting in the all-to-all: it failed when rank 1 did, not at the 30 s timeout.
            assertTrue(System.nanoTime() - start < Duration.ofSeconds(10).toNanos(), "the world waited for the timeout");
            IllegalStateException after = assertThrows(IllegalStateException.class, () -> world.run(rank -> null));
            assertTrue(after.getMessage().contains("aborted"), after::getMessage);
        }
    }

    @Test
    void aPeerThatNeverArrivesIsACommunicationException() {
        try (Arena arena = Arena.ofShared(); InProcessWorld world = Usp4j.cpuWorld(2, Duration.ofMillis(500))) {
            Local x = Local.allocate(arena, 5);
            CommunicationException e = assertThrows(CommunicationException.class, () -> world.run(rank -> {
                AttentionLayer layer = rank.newAttention(MESH, AttentionOptions.defaults());
                if (rank.rank() == 0) {
                    layer.forward(x.q(), x.k(), x.v(), x.out()); // rank 1 never joins
                }
                return null;
            }));
            assertTrue(e.getMessage().contains("timed out"), e::getMessage);
        }
    }

    @Test
    void checkedExceptionsOfARankFunctionAreWrapped() {
        try (InProcessWorld world = Usp4j.cpuWorld(2)) {
            CompletionException e = assertThrows(CompletionException.class, () -> world.run(rank -> {
                if (rank.rank() == 1) {
                    throw new IOException("disk gone");
                }
                return null;
            }));
            assertInstanceOf(IOException.class, e.getCause());
            assertTrue(e.getMessage().contains("rank 1"), e::getMessage);
        }
    }

    @Test
    void closedObjectsRefuseUseAndCloseIsIdempotent() {
        try (Arena arena = Arena.ofShared()) {
            Local x = Local.allocate(arena, 6);
            AtomicReference<AttentionLayer> kept = new AtomicReference<>();
            InProcessWorld world = Usp4j.cpuWorld(2);
            world.run(rank -> {
                AttentionLayer layer = rank.newAttention(MESH, AttentionOptions.defaults());
                layer.close();
                layer.close();
                IllegalStateException e = assertThrows(IllegalStateException.class,
                        () -> layer.forward(x.q(), x.k(), x.v(), x.out()));
                assertTrue(e.getMessage().contains("closed"), e::getMessage);
                assertThrows(IllegalStateException.class, layer::discardSavedState);
                if (rank.rank() == 0) {
                    kept.set(rank.newAttention(MESH, AttentionOptions.defaults()));
                } else {
                    rank.newAttention(MESH, AttentionOptions.defaults());
                }
                return null;
            });
            world.close();
            world.close();
            assertThrows(IllegalStateException.class, () -> world.run(rank -> null));
            // Closing the world closed the layer its rank still held.
            assertThrows(IllegalStateException.class, () -> kept.get().forward(x.q(), x.k(), x.v(), x.out()));
        }
    }

    @Test
    void linearLayersHaveTheSameLifecycle() {
        try (Arena arena = Arena.ofShared()) {
            Local x = Local.allocate(arena, 9);
            AtomicReference<LinearAttentionLayer> kept = new AtomicReference<>();
            LinearAttentionOptions options = LinearAttentionOptions.causal(0.5).withScale(2);
            InProcessWorld world = Usp4j.cpuWorld(2);
            world.run(rank -> {
                LinearAttentionLayer layer = rank.newLinearAttention(MESH, options);
                assertEquals(options, layer.options());
                assertEquals(MESH, layer.mesh());
                assertEquals("LinearAttentionLayer[mesh 2x1 (ulysses x ring), linear, causal, decay 0.5, scale 2.0]",
                        layer.toString());
                IllegalStateException none = assertThrows(IllegalStateException.class,
                        () -> layer.backward(x.dout(), x.dq(), x.dk(), x.dv()));
                assertTrue(none.getMessage().contains("needs a forward first"), none::getMessage);
                layer.forward(x.q(), x.k(), x.v(), x.out());
                assertTrue(layer.hasSavedState());
                layer.discardSavedState();
                assertFalse(layer.hasSavedState());
                layer.close();
                layer.close();
                assertTrue(layer.toString().endsWith(", closed]"), layer::toString);
                assertThrows(IllegalStateException.class, () -> layer.forward(x.q(), x.k(), x.v(), x.out()));
                kept.set(rank.newLinearAttention(MESH, options));
                return null;
            });
            world.close();
            // Closing the world closed the linear layers its ranks still held.
            assertThrows(IllegalStateException.class, () -> kept.get().forward(x.q(), x.k(), x.v(), x.out()));
        }
        try (InProcessWorld world = Usp4j.cpuWorld(2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> world.run(rank -> rank.newLinearAttention(new Mesh(2, 2), LinearAttentionOptions.nonCausal())));
            assertEquals("mesh 2x2 (ulysses x ring) has 4 ranks, but the world has 2", e.getMessage());
        }
        assertEquals("decay must be in (0, 1], got 0.0",
                assertThrows(IllegalArgumentException.class, () -> LinearAttentionOptions.causal(0)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> LinearAttentionOptions.causal(1.5));
        assertThrows(IllegalArgumentException.class, () -> LinearAttentionOptions.causal(Double.NaN));
        assertEquals("scale must be a finite positive float, got 1.0E-300", assertThrows(IllegalArgumentException.class,
                () -> LinearAttentionOptions.nonCausal().withScale(1e-300)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> LinearAttentionOptions.nonCausal().withScale(-1));
        assertThrows(NullPointerException.class, () -> AttentionOptions.defaults().withRingAlgorithm(null));
    }

    @Test
    void aRanksObjectsActOnlyOnItsOwnThreadInsideRun() {
        try (Arena arena = Arena.ofShared(); InProcessWorld world = Usp4j.cpuWorld(2)) {
            Local x = Local.allocate(arena, 7);
            AttentionLayer[] layers = new AttentionLayer[2];
            RankContext[] contexts = new RankContext[2];
            world.run(rank -> {
                contexts[rank.rank()] = rank;
                layers[rank.rank()] = rank.newAttention(MESH, AttentionOptions.defaults());
                return null;
            });
            IllegalStateException outside = assertThrows(IllegalStateException.class,
                    () -> layers[0].forward(x.q(), x.k(), x.v(), x.out()));
            assertTrue(outside.getMessage().contains("only inside InProcessWorld.run"), outside::getMessage);
            assertThrows(IllegalStateException.class, () -> contexts[1].newAttention(MESH, AttentionOptions.defaults()));
            IllegalStateException swapped = assertThrows(IllegalStateException.class, () -> world.run(rank -> {
                layers[1 - rank.rank()].discardSavedState(); // fine: local, no thread rule for discarding
                layers[1 - rank.rank()].forward(x.q(), x.k(), x.v(), x.out());
                return null;
            }));
            assertTrue(swapped.getMessage().contains("on the thread running rank"), swapped::getMessage);
        }
    }

    @Test
    void backwardNeedsItsForwardAndDiscardingDropsIt() {
        try (Arena arena = Arena.ofShared(); InProcessWorld world = Usp4j.cpuWorld(2)) {
            Local x = Local.allocate(arena, 8);
            world.run(rank -> {
                try (AttentionLayer layer = rank.newAttention(MESH, AttentionOptions.defaults())) {
                    assertFalse(layer.hasSavedState());
                    IllegalStateException none = assertThrows(IllegalStateException.class,
                            () -> layer.backward(x.dout(), x.dq(), x.dk(), x.dv()));
                    assertTrue(none.getMessage().contains("needs a forward first"), none::getMessage);
                    layer.forward(x.q(), x.k(), x.v(), x.out());
                    layer.discardSavedState();
                    assertFalse(layer.hasSavedState());
                    assertThrows(IllegalStateException.class, () -> layer.backward(x.dout(), x.dq(), x.dk(), x.dv()));
                    layer.forward(x.q(), x.k(), x.v(), x.out());
                    layer.backward(x.dout(), x.dq(), x.dk(), x.dv());
                    assertThrows(IllegalStateException.class, () -> layer.backward(x.dout(), x.dq(), x.dk(), x.dv()));
                }
                return null;
            });
        }
    }

    @Test
    void parametersAreValidated() {
        assertEquals("mesh degrees must be at least 1, got ulysses 0 x ring 2",
                assertThrows(IllegalArgumentException.class, () -> new Mesh(0, 2)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> new Mesh(65536, 65536));
        assertEquals("rank 4 outside mesh 2x2 (ulysses x ring) of 4 ranks",
                assertThrows(IllegalArgumentException.class, () -> new Mesh(2, 2).ringRank(4)).getMessage());
        for (double bad : new double[] {0, -1, Double.NaN, Double.POSITIVE_INFINITY, 1e-50, 1e300}) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> AttentionOptions.defaults().withScale(bad));
            assertTrue(e.getMessage().contains(String.valueOf(bad)), e::getMessage);
        }
        assertThrows(NullPointerException.class, () -> AttentionOptions.defaults().withLayout(null));
        assertEquals("zigzag layout needs S % (2P) == 0, got S = 12 and 2P = 8 (mesh 2x2 (ulysses x ring))",
                assertThrows(IllegalArgumentException.class,
                        () -> SequenceLayout.ZIGZAG.globalPositions(12, new Mesh(2, 2), 0)).getMessage());
        assertEquals("an in-process world needs at least 1 rank, got 0",
                assertThrows(IllegalArgumentException.class, () -> Usp4j.cpuWorld(0)).getMessage());
        assertThrows(IllegalArgumentException.class, () -> Usp4j.cpuWorld(2, Duration.ZERO));
        assertThrows(NullPointerException.class, () -> Usp4j.cpuWorld(2, null));
        try (InProcessWorld world = Usp4j.cpuWorld(2)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> world.run(rank -> rank.newAttention(new Mesh(2, 2), AttentionOptions.defaults())));
            assertEquals("mesh 2x2 (ulysses x ring) has 4 ranks, but the world has 2", e.getMessage());
        }
    }

    @Test
    void optionsAreValuesWithDefaults() {
        AttentionOptions d = AttentionOptions.defaults();
        assertFalse(d.causal());
        assertSame(SequenceLayout.CONTIGUOUS, d.layout());
        assertTrue(d.scale().isEmpty());
        assertEquals(0.125, d.scaleFor(64), 0);
        AttentionOptions o = d.withCausal(true).withLayout(SequenceLayout.ZIGZAG).withScale(0.5);
        assertEquals(0.5, o.scaleFor(64), 0);
        assertEquals(o, AttentionOptions.defaults().withScale(0.5).withLayout(SequenceLayout.ZIGZAG).withCausal(true));
        assertEquals(o.hashCode(), AttentionOptions.defaults().withScale(0.5).withLayout(SequenceLayout.ZIGZAG)
                .withCausal(true).hashCode());
        assertEquals(d, o.withDefaultScale().withCausal(false).withLayout(SequenceLayout.CONTIGUOUS));
        assertEquals("causal, zigzag, scale 0.5", o.toString());
        assertFalse(d.causal(), "withers leave the original unchanged");
        assertEquals(List.of(0L, 1L, 14L, 15L), java.util.Arrays.stream(
                SequenceLayout.ZIGZAG.globalPositions(16, new Mesh(1, 4), 0)).boxed().toList());
    }

    @Test
    void cudaWorldWithoutAGpuSaysWhy() {
        assumeTrue(Usp4j.cudaProblem().isPresent(), "a GPU is present");
        BackendUnavailableException e = assertThrows(BackendUnavailableException.class, () -> Usp4j.cudaWorld(2, 0));
        assertTrue(e.getMessage().startsWith("the CUDA backend cannot run here: "), e::getMessage);
    }
}
