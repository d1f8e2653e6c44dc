package org.usp4j.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Bad calls are refused with an IllegalArgumentException that names the offending values, before any
 * output is touched; tensors of confined arenas work from their owner thread only.
 */
class CpuAttentionKernelValidationTest {

    private final CpuAttentionKernel kernel = new CpuAttentionKernel();

    /** A consistent GQA problem: q [2, 6, 4, 8], k/v [2, 6, 2, 8]; tensors can be swapped out per test. */
    private static final class Problem {
        Tensor q;
        Tensor k;
        Tensor v;
        Tensor out;
        Tensor lse;
        Tensor dout;
        Tensor dq;
        Tensor dk;
        Tensor dv;

        Problem(Arena arena) {
            q = filled(arena, DType.F32, 2, 6, 4, 8);
            k = filled(arena, DType.F32, 2, 6, 2, 8);
            v = filled(arena, DType.F32, 2, 6, 2, 8);
            out = filled(arena, DType.F32, 2, 6, 4, 8);
            lse = filled(arena, DType.F32, 2, 4, 6);
            dout = filled(arena, DType.F32, 2, 6, 4, 8);
            dq = filled(arena, DType.F32, 2, 6, 4, 8);
            dk = filled(arena, DType.F32, 2, 6, 2, 8);
            dv = filled(arena, DType.F32, 2, 6, 2, 8);
        }

        float[][] outputs() {
            return new float[][] {HostTensors.toFloatArray(out), HostTensors.toFloatArray(lse),
                HostTensors.toFloatArray(dq), HostTensors.toFloatArray(dk), HostTensors.toFloatArray(dv)};
        }
    }

    private static Tensor filled(Arena arena, DType type, long... shape) {
        Tensor t = Tensor.allocate(arena, type, shape);
        HostTensors.fillNormal(t, shape.length * 31L + shape[shape.length - 1]);
        return t;
    }

    private void forward(Problem p) {
        kernel.forward(p.q, p.k, p.v, Mask.CAUSAL, 0.3f, p.out, p.lse);
    }

    private void backward(Problem p) {
        kernel.backward(p.q, p.k, p.v, p.out, p.dout, p.lse, Mask.NONE, 0.3f, p.dq, p.dk, p.dv, true);
    }

    /** Runs {@code call}, expects an IllegalArgumentException mentioning each fragment, and no output changed. */
    private static void assertRefused(Problem p, Executable call, String... fragments) {
        float[][] before = p.outputs();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call);
        for (String fragment : fragments) {
            assertTrue(e.getMessage().contains(fragment), "message '" + e.getMessage() + "' lacks '" + fragment + "'");
        }
        float[][] after = p.outputs();
        for (int i = 0; i < before.length; i++) {
            assertArrayEquals(before[i], after[i], "output " + i + " changed although the call was refused");
        }
    }

    @Test
    void refusesMismatchedShapes() {
        try (Arena arena = Arena.ofShared()) {
            Problem p = new Problem(arena);
            Tensor original = p.v;
            p.v = Tensor.allocate(arena, DType.F32, 2, 5, 2, 8);
            assertRefused(p, () -> forward(p), "[2, 6, 2, 8]", "[2, 5, 2, 8]");
            p.v = original;

            p.k = Tensor.allocate(arena, DType.F32, 2, 6, 3, 8);
            p.v = Tensor.allocate(arena, DType.F32, 2, 6, 3, 8);
            assertRefused(p, () -> forward(p), "(4)", "(3)");
            p.k = Tensor.allocate(arena, DType.F32, 2, 6, 2, 16);
            p.v = Tensor.allocate(arena, DType.F32, 2, 6, 2, 16);
            assertRefused(p, () -> forward(p), "head_dim", "(8)", "(16)");
            p.k = Tensor.allocate(arena, DType.F32, 1, 6, 2, 8);
            p.v = Tensor.allocate(arena, DType.F32, 1, 6, 2, 8);
            assertRefused(p, () -> forward(p), "batch", "(2)", "(1)");
        }
    }

    @Test
    void refusesBadOutputs() {
        try (Arena arena = Arena.ofShared()) {
            Problem p = new Problem(arena);
            Tensor out = p.out;
            p.out = Tensor.allocate(arena, DType.F32, 2, 6, 2, 8);
            assertRefused(p, () -> forward(p), "out", "[2, 6, 2, 8]", "[2, 6, 4, 8]");
            p.out = out;

            Tensor lse = p.lse;
            p.lse = Tensor.allocate(arena, DType.BF16, 2, 4, 6);
            assertRefused(p, () -> forward(p), "lse", "F32", "BF16");
            p.lse = Tensor.allocate(arena, DType.F32, 2, 6, 4);
            assertRefused(p, () -> forward(p), "lse", "[2, 6, 4]");
            p.lse = lse;

            // head_dim not contiguous: a [b, s, h, d] view of a [b, s, d, h] buffer.
            p.out = Tensor.allocate(arena, DType.F32, 2, 6, 8, 4).transpose(2, 3);
            assertRefused(p, () -> forward(p), "out", "contiguous");
        }
    }

    @Test
    void refusesBadBackwardArguments() {
        try (Arena arena = Arena.ofShared()) {
            Problem p = new Problem(arena);
            Tensor dk = p.dk;
            p.dk = Tensor.allocate(arena, DType.F32, 2, 6, 4, 8); // shaped like q, not like k (GQA)
            assertRefused(p, () -> backward(p), "dk", "[2, 6, 4, 8]", "[2, 6, 2, 8]");
            p.dk = dk;

            Tensor dout = p.dout;
            p.dout = Tensor.allocate(arena, DType.F32, 2, 7, 4, 8);
            assertRefused(p, () -> backward(p), "dout", "[2, 7, 4, 8]");
            p.dout = dout;

            p.dq = Tensor.allocate(arena, DType.F32, 2, 6, 4);
            assertRefused(p, () -> backward(p), "dq", "[2, 6, 4]");
        }
    }

    @Test
    void refusesBadScalesAndDeviceTensors() {
        try (Arena arena = Arena.ofShared()) {
            Problem p = new Problem(arena);
            assertRefused(p, () -> kernel.forward(p.q, p.k, p.v, Mask.NONE, Float.NaN, p.out, p.lse), "scale", "NaN");
            assertRefused(p, () -> kernel.backward(p.q, p.k, p.v, p.out, p.dout, p.lse, Mask.NONE,
                    Float.POSITIVE_INFINITY, p.dq, p.dk, p.dv, false), "scale", "Infinity");

            Tensor onDevice = Tensor.device(new DevicePointer(0x10000, 2 * 6 * 2 * 8 * 4, 0), DType.F32, 2, 6, 2, 8);
            assertRefused(p, () -> kernel.forward(p.q, onDevice, p.v, Mask.NONE, 1f, p.out, p.lse), "host",
                    "k", "cuda:0");
        }
    }

    @Test
    void confinedTensorsWorkOnTheirOwnerThreadAndAreRefusedElsewhere() throws Exception {
        try (Arena arena = Arena.ofConfined()) {
            Problem p = new Problem(arena);
            forward(p); // owner thread: runs on the calling thread alone
            Tensor expected = Tensor.allocate(arena, DType.F32, 2, 6, 4, 8);
            Tensor expectedLse = Tensor.allocate(arena, DType.F32, 2, 4, 6);
            new ReferenceAttention().forward(p.q, p.k, p.v, Mask.CAUSAL, 0.3f, expected, expectedLse);
            double error = HostTensors.relativeError(p.out, expected);
            assertTrue(error < 1e-5, "relative error " + error);

            AtomicReference<Throwable> failure = new AtomicReference<>();
            Thread other = new Thread(() -> {
                try {
                    forward(p);
                } catch (Throwable e) {
                    failure.set(e);
                }
            });
            other.start();
            other.join();
            assertTrue(failure.get() instanceof IllegalArgumentException, "got " + failure.get());
            assertTrue(failure.get().getMessage().contains("confined"), failure.get().getMessage());
        }
    }

    @Test
    void parallelismFollowsThePool() {
        ForkJoinPool pool = new ForkJoinPool(3);
        try {
            assertTrue(new CpuAttentionKernel(pool).parallelism() == 3);
            assertTrue(kernel.parallelism() == Runtime.getRuntime().availableProcessors());
        } finally {
            pool.shutdownNow();
        }
    }
}
