package org.usp4j.sp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.usp4j.api.Mesh;
import org.usp4j.comm.TrafficCounter;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.kernel.AttentionKernel;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.Tensor;

/** Every bad input is an IllegalArgumentException naming the values, thrown before any rank works or talks. */
class ValidationTest {

    private static Tensor t(Arena arena, DType dtype, long... shape) {
        return Tensor.allocate(arena, dtype, shape);
    }

    /** Runs {@code call} on a fresh facade, checks the message, then that nothing was dealt or sent. */
    private static void refused(Mesh mesh, AttentionOptions options, Function<Arena, Tensor[]> inputs, String... words) {
        List<CpuBackend> backends = new CopyOnWriteArrayList<>();
        try (Arena arena = Arena.ofConfined();
             AttentionEngine attention = AttentionEngine.inProcess(new UspPlan(mesh, options), r -> {
                 CpuBackend b = new CpuBackend(new ReferenceAttention());
                 backends.add(b);
                 return b;
             }, Duration.ofSeconds(5))) {
            Tensor[] in = inputs.apply(arena);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> attention.forward(in[0], in[1], in[2], arena));
            for (String w : words) {
                assertTrue(e.getMessage().contains(w), "'" + e.getMessage() + "' should name " + w);
            }
            backends.forEach(b -> assertEquals(0, b.liveBytes(), "nothing may be dealt before validation"));
            for (int r = 0; r < mesh.size(); r++) {
                assertEquals(0, attention.ranks().world(r).traffic().totalBytesSent());
            }
            // Still usable: validation aborted nothing.
            long s = 4L * mesh.size();
            long h = 2L * mesh.ulysses();
            Tensor q = t(arena, DType.F32, 1, s, h, 4);
            attention.forward(q, q, q, arena);
        }
    }

    @Test
    void headsThatDoNotSplitOverUlysses() {
        refused(new Mesh(4, 1), AttentionOptions.defaults(),
                a -> new Tensor[] {t(a, DType.F32, 1, 16, 6, 8), t(a, DType.F32, 1, 16, 6, 8), t(a, DType.F32, 1, 16, 6, 8)},
                "h = 6", "U = 4");
        refused(new Mesh(4, 1), AttentionOptions.defaults(),
                a -> new Tensor[] {t(a, DType.F32, 1, 16, 12, 8), t(a, DType.F32, 1, 16, 3, 8), t(a, DType.F32, 1, 16, 3, 8)},
                "h_kv = 3", "U = 4");
        refused(new Mesh(1, 2), AttentionOptions.defaults(),
                a -> new Tensor[] {t(a, DType.F32, 1, 16, 6, 8), t(a, DType.F32, 1, 16, 4, 8), t(a, DType.F32, 1, 16, 4, 8)},
                "(6)", "(4)");
    }

    @Test
    void sequencesThatDoNotDeal() {
        refused(new Mesh(1, 3), AttentionOptions.defaults(),
                a -> new Tensor[] {t(a, DType.F32, 1, 32, 2, 8), t(a, DType.F32, 1, 32, 2, 8), t(a, DType.F32, 1, 32, 2, 8)},
                "S = 32", "P = 3");
        refused(new Mesh(2, 2), new AttentionOptions(true, SequenceLayout.ZIGZAG, null),
                a -> new Tensor[] {t(a, DType.F32, 1, 36, 4, 8), t(a, DType.F32, 1, 36, 4, 8), t(a, DType.F32, 1, 36, 4, 8)},
                "S = 36", "2P = 8");
        refused(new Mesh(1, 2), AttentionOptions.defaults(),
                a -> new Tensor[] {t(a, DType.F32, 1, 16, 2, 8), t(a, DType.F32, 1, 8, 2, 8), t(a, DType.F32, 1, 8, 2, 8)},
                "16", "8");
    }

    @Test
    void shapesAndDtypesThatDoNotMatch() {
        Mesh mesh = new Mesh(1, 2);
        AttentionOptions o = AttentionOptions.defaults();
        refused(mesh, o, a -> new Tensor[] {t(a, DType.F32, 1, 16, 2, 8), t(a, DType.BF16, 1, 16, 2, 8), t(a, DType.F32, 1, 16, 2, 8)},
                "F32", "BF16");
        refused(mesh, o, a -> new Tensor[] {t(a, DType.F32, 1, 16, 2, 8), t(a, DType.F32, 1, 16, 2, 8), t(a, DType.F32, 1, 16, 1, 8)},
                "[1, 16, 2, 8]", "[1, 16, 1, 8]");
        refused(mesh, o, a -> new Tensor[] {t(a, DType.F32, 2, 16, 2, 8), t(a, DType.F32, 1, 16, 2, 8), t(a, DType.F32, 1, 16, 2, 8)},
                "batch", "(2)", "(1)");
        refused(mesh, o, a -> new Tensor[] {t(a, DType.F32, 1, 16, 2, 8), t(a, DType.F32, 1, 16, 2, 4), t(a, DType.F32, 1, 16, 2, 4)},
                "head_dim", "(8)", "(4)");
        refused(mesh, o, a -> new Tensor[] {t(a, DType.F32, 16, 2, 8), t(a, DType.F32, 16, 2, 8), t(a, DType.F32, 16, 2, 8)},
                "rank 4", "[16, 2, 8]");
        refused(mesh, o, a -> {
            Tensor dev = Tensor.device(new DevicePointer(0x10000, 4096, 0), DType.F32, 1, 16, 2, 8);
            return new Tensor[] {dev, dev, dev};
        }, "host", "@cuda:0");
    }

    @Test
    void badOptionsMeshesAndCallOrder() {
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new AttentionOptions(false, SequenceLayout.ZIGZAG, -1.0))
                .getMessage().contains("-1.0"));
        assertThrows(IllegalArgumentException.class, () -> new AttentionOptions(false, SequenceLayout.ZIGZAG, Double.NaN));
        assertThrows(IllegalArgumentException.class, () -> new AttentionOptions(false, SequenceLayout.ZIGZAG, 1e300));
        assertThrows(IllegalArgumentException.class, () -> new AttentionOptions(false, null, null));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> new Mesh(2, -1)).getMessage().contains("ring -1"));
        try (Arena arena = Arena.ofConfined()) {
            AttentionEngine attention = AttentionEngine.inProcess(new UspPlan(new Mesh(2, 1), AttentionOptions.defaults()),
                    r -> new CpuBackend(new ReferenceAttention()), Duration.ofSeconds(60));
            Tensor q = t(arena, DType.F32, 1, 8, 2, 4);
            try {
                assertThrows(IllegalStateException.class, () -> attention.backward(q, arena));
                attention.forward(q, q, q, arena);
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> attention.backward(t(arena, DType.F32, 1, 8, 2, 8), arena));
                assertTrue(e.getMessage().contains("dout") && e.getMessage().contains("[1, 8, 2, 4]"), e.getMessage());
            } finally {
                attention.close();
            }
            attention.close();
            assertThrows(IllegalStateException.class, () -> attention.forward(q, q, q, arena));
        }
    }

    @Test
    void strategiesRefuseBadInputsBeforeTalking() {
        // Only rank 0 calls forward: had it communicated first, it would time out instead of refusing.
        try (LocalWorld world = new LocalWorld(2, Duration.ofSeconds(5)); Arena arena = Arena.ofShared()) {
            Mesh mesh = new Mesh(2, 1);
            List<String> messages = new CopyOnWriteArrayList<>();
            world.run((rank, comm) -> {
                try (MeshGroups groups = MeshGroups.split(mesh, comm)) {
                    CpuBackend backend = new CpuBackend(new ReferenceAttention());
                    UspAttention usp = new UspPlan(mesh, new AttentionOptions(true, SequenceLayout.ZIGZAG, null))
                            .create(groups, backend);
                    RingAttention ring = new RingAttention(groups.ring(), backend,
                            new AttentionOptions(true, SequenceLayout.ZIGZAG, null));
                    if (rank == 0) {
                        Tensor odd = t(arena, DType.F32, 1, 3, 2, 4);
                        Tensor q3 = t(arena, DType.F32, 1, 4, 3, 4);
                        messages.add(assertThrows(IllegalArgumentException.class, () -> usp.forward(odd, odd, odd)).getMessage());
                        messages.add(assertThrows(IllegalArgumentException.class, () -> usp.forward(q3, q3, q3)).getMessage());
                        messages.add(assertThrows(IllegalArgumentException.class, () -> ring.forward(odd, odd, odd)).getMessage());
                    }
                    assertEquals(0, backend.liveBytes());
                }
                return null;
            });
            assertTrue(messages.get(0).contains("even local length") && messages.get(0).contains("3"), messages.get(0));
            assertTrue(messages.get(1).contains("h = 3") && messages.get(1).contains("U = 2"), messages.get(1));
            assertTrue(messages.get(2).contains("even ring block") && messages.get(2).contains("3"), messages.get(2));
            world.traffic().stream().map(TrafficCounter::totalBytesSent).forEach(b -> assertEquals(0L, b));
        }
    }

    /** A kernel that, like cuDNN, refuses F32, and in the backward refuses blocks with a single key. */
    private static final class PickyKernel implements AttentionKernel {
        private final ReferenceAttention reference = new ReferenceAttention();

        @Override
        public void forward(Tensor q, Tensor k, Tensor v, Mask mask, float scale, Tensor out, Tensor lse) {
            reference.forward(q, k, v, mask, scale, out, lse);
        }

        @Override
        public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor lse, Mask mask,
                             float scale, Tensor dq, Tensor dk, Tensor dv, boolean accumulate) {
            reference.backward(q, k, v, out, dout, lse, mask, scale, dq, dk, dv, accumulate);
        }

        @Override
        public void validateForward(AttentionShapes block, DType dtype, Mask mask) {
            if (dtype == DType.F32) {
                throw new IllegalArgumentException("picky kernel refuses F32");
            }
        }

        @Override
        public void validateBackward(AttentionShapes block, DType dtype, Mask mask) {
            validateForward(block, dtype, mask);
            if (block.seqKv() == 1) {
                throw new IllegalArgumentException("picky kernel refuses a backward block with 1 key, " + mask);
            }
        }
    }

    @Test
    void whatTheKernelWouldRefuseIsRefusedOnEveryRankBeforeAnyTransfer() {
        // USP 1 x 4: every rank refuses F32 in validate; zigzag with 2 rows per ring block makes the
        // backward's off-diagonal steps of the ranks after the first attend to one key (chunk j), which every
        // rank (the first too, whose own steps never do) refuses before its backward sends a byte.
        for (DType dtype : new DType[] {DType.F32, DType.BF16}) {
            try (LocalWorld world = new LocalWorld(4, Duration.ofSeconds(10)); Arena arena = Arena.ofShared()) {
                Mesh mesh = new Mesh(1, 4);
                List<String> messages = new CopyOnWriteArrayList<>();
                long[] forwardBytes = new long[4];
                world.run((rank, comm) -> {
                    try (MeshGroups groups = MeshGroups.split(mesh, comm)) {
                        CpuBackend backend = new CpuBackend(new PickyKernel());
                        UspAttention usp = new UspPlan(mesh, new AttentionOptions(true, SequenceLayout.ZIGZAG, null))
                                .create(groups, backend);
                        Tensor x = t(arena, dtype, 1, 2, 2, 8);
                        if (dtype == DType.F32) {
                            messages.add(assertThrows(IllegalArgumentException.class, () -> usp.forward(x, x, x))
                                    .getMessage());
                        } else {
                            try (Forward f = usp.forward(x, x, x)) {
                                forwardBytes[rank] = comm.traffic().totalBytesSent();
                                messages.add(assertThrows(IllegalArgumentException.class, () -> usp.backward(f, x))
                                        .getMessage());
                            }
                        }
                        assertEquals(0, backend.liveBytes());
                    }
                    return null;
                });
                assertEquals(4, messages.size(), messages.toString());
                for (String m : messages) {
                    assertTrue(m.contains(dtype == DType.F32 ? "refuses F32" : "backward block with 1 key"), m);
                }
                for (int r = 0; r < 4; r++) {
                    assertEquals(forwardBytes[r], world.traffic(r).totalBytesSent(), "rank " + r + " sent in the backward");
                }
            }
        }
    }
}
