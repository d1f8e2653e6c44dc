package org.usp4j.gpu.sdpa;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.gpu.CudaBackend;
import org.usp4j.gpu.GpuTests;
import org.usp4j.kernel.Mask;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * cuDNN SDPA forward and backward against the float64 reference on the same (bf16/f16-rounded)
 * inputs. Tolerances (relative Frobenius error): out 1e-2 and lse 1e-4 (the stats are float32 from
 * float32 accumulation); gradients 2e-2 (cuDNN rounds P and dS to the io type inside the kernel).
 */
@Tag("gpu")
class CudnnAttentionGpuTest {

    private static CudaBackend gpu;

    @BeforeAll
    static void open() {
        if (!GpuTests.deviceAvailable()) {
            return;
        }
        gpu = CudnnBackends.create(0);
    }

    @BeforeEach
    void requireDevice() {
        GpuTests.requireDevice();
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
        }
    }

    @ParameterizedTest(name = "b={0} h={1} hkv={2} sq={3} skv={4} d={5} causal={6} {7}")
    @CsvSource({
            "2, 4, 4, 256, 256, 64, false, BF16",
            "1, 8, 2, 384, 384, 128, true, BF16",
            "2, 4, 1, 128, 384, 64, false, F16",
            "1, 4, 4, 200, 200, 64, true, BF16",
            "1, 2, 2, 1024, 1024, 128, true, F16",
            "1, 4, 2, 512, 256, 96, false, BF16"})
    void forwardAndBackwardMatchTheFloat64Reference(long b, long h, long hkv, long sq, long skv, long d, boolean causal,
                                                    DType dtype) {
        Mask mask = causal ? Mask.CAUSAL : Mask.NONE;
        float scale = (float) (1 / Math.sqrt(d));
        ReferenceAttention ref = new ReferenceAttention();
        try (Arena arena = Arena.ofConfined(); TensorAllocator dev = gpu.newAllocator()) {
            long seed = b * 1000 + sq + skv + d;
            Tensor q = GpuTests.randomHost(arena, dtype, seed, b, sq, h, d);
            Tensor k = GpuTests.randomHost(arena, dtype, seed + 1, b, skv, hkv, d);
            Tensor v = GpuTests.randomHost(arena, dtype, seed + 2, b, skv, hkv, d);
            Tensor dout = GpuTests.randomHost(arena, dtype, seed + 3, b, sq, h, d);
            Tensor qd = upload(dev, q), kd = upload(dev, k), vd = upload(dev, v), doutD = upload(dev, dout);

            Tensor outD = dev.allocate(DType.F32, b, sq, h, d);
            Tensor lseD = dev.allocate(DType.F32, b, h, sq);
            gpu.kernel().forward(qd, kd, vd, mask, scale, outD, lseD);
            Tensor refOut = Tensor.allocate(arena, DType.F32, b, sq, h, d);
            Tensor refLse = Tensor.allocate(arena, DType.F32, b, h, sq);
            ref.forward(q, k, v, mask, scale, refOut, refLse);
            assertError("out", refOut, GpuTests.toHost(gpu, arena, outD), 1e-2);
            assertError("lse", refLse, GpuTests.toHost(gpu, arena, lseD), 1e-4);

            // The backward takes the final out in the io dtype, as the ring passes it.
            Tensor outIo = dev.allocate(dtype, b, sq, h, d);
            gpu.copy(outD, outIo);
            Tensor outIoHost = GpuTests.toHost(gpu, arena, outIo);
            Tensor dq = dev.allocate(DType.F32, b, sq, h, d);
            Tensor dk = dev.allocate(DType.F32, b, skv, hkv, d);
            Tensor dv = dev.allocate(DType.F32, b, skv, hkv, d);
            gpu.kernel().backward(qd, kd, vd, outIo, doutD, lseD, mask, scale, dq, dk, dv, false);
            Tensor rdq = Tensor.allocate(arena, DType.F32, b, sq, h, d);
            Tensor rdk = Tensor.allocate(arena, DType.F32, b, skv, hkv, d);
            Tensor rdv = Tensor.allocate(arena, DType.F32, b, skv, hkv, d);
            ref.backward(q, k, v, outIoHost, dout, refLse, mask, scale, rdq, rdk, rdv, false);
            assertError("dq", rdq, GpuTests.toHost(gpu, arena, dq), 2e-2);
            assertError("dk", rdk, GpuTests.toHost(gpu, arena, dk), 2e-2);
            assertError("dv", rdv, GpuTests.toHost(gpu, arena, dv), 2e-2);

            // accumulate adds onto what is there: twice the gradient.
            gpu.kernel().backward(qd, kd, vd, outIo, doutD, lseD, mask, scale, dq, dk, dv, true);
            ref.backward(q, k, v, outIoHost, dout, refLse, mask, scale, rdq, rdk, rdv, true);
            assertError("2 dq", rdq, GpuTests.toHost(gpu, arena, dq), 2e-2);
            assertError("2 dv", rdv, GpuTests.toHost(gpu, arena, dv), 2e-2);
        }
    }

    @Test
    void stridedSequenceSlicesAsTheZigzagRingPassesThem() {
        long b = 2, s = 512, h = 4, d = 64, half = s / 2;
        float scale = 0.125f;
        ReferenceAttention ref = new ReferenceAttention();
        try (Arena arena = Arena.ofConfined(); TensorAllocator dev = gpu.newAllocator()) {
            Tensor q = GpuTests.randomHost(arena, DType.BF16, 11, b, s, h, d);
            Tensor k = GpuTests.randomHost(arena, DType.BF16, 12, b, s, h, d);
            Tensor v = GpuTests.randomHost(arena, DType.BF16, 13, b, s, h, d);
            Tensor qd = upload(dev, q), kd = upload(dev, k), vd = upload(dev, v);
            // Second half of Q against all of K/V, writing rows [half, s) of float32 accumulators.
            Tensor out = dev.allocate(DType.F32, b, s, h, d);
            Tensor lse = dev.allocate(DType.F32, b, h, s);
            gpu.kernel().forward(qd.slice(1, half, half), kd, vd, Mask.NONE, scale, out.slice(1, half, half),
                    lse.slice(2, half, half));
            Tensor refOut = Tensor.allocate(arena, DType.F32, b, half, h, d);
            Tensor refLse = Tensor.allocate(arena, DType.F32, b, h, half);
            ref.forward(q.slice(1, half, half), k, v, Mask.NONE, scale, refOut, refLse);
            Tensor hostOut = GpuTests.toHost(gpu, arena, out);
            Tensor hostLse = GpuTests.toHost(gpu, arena, lse);
            assertError("out rows", refOut, hostOut.slice(1, half, half), 1e-2);
            assertError("lse rows", refLse, hostLse.slice(2, half, half), 1e-4);
            assertEquals(0.0, HostTensors.relativeError(hostOut.slice(1, 0, half),
                    Tensor.allocate(arena, DType.F32, b, half, h, d)), "rows outside the slice untouched");
        }
    }

    @Test
    void repeatedCallsReuseCachedPlans() {
        try (Arena arena = Arena.ofConfined(); TensorAllocator dev = gpu.newAllocator()) {
            Tensor q = upload(dev, GpuTests.randomHost(arena, DType.BF16, 21, 1, 256, 4, 64));
            Tensor out = dev.allocate(DType.BF16, 1, 256, 4, 64);
            Tensor lse = dev.allocate(DType.F32, 1, 4, 256);
            CudnnAttention kernel = (CudnnAttention) gpu.kernel();
            kernel.forward(q, q, q, Mask.CAUSAL, 0.125f, out, lse);
            long builds = kernel.planBuilds();
            for (int i = 0; i < 5; i++) {
                kernel.forward(q, q, q, Mask.CAUSAL, 0.125f, out, lse);
            }
            assertEquals(builds, kernel.planBuilds(), "the same shape must not build a new plan");
            kernel.forward(q, q, q, Mask.NONE, 0.125f, out, lse);
            assertEquals(builds + 1, kernel.planBuilds(), "another mask is another plan");
        }
    }

    /** Packed sequences: one plain graph call per segment; 1-token segments are refused by the backward. */
    @Test
    void packedSequencesMatchEachSequenceAttendedAlone() {
        org.usp4j.kernel.SequenceBoundaries seqs = org.usp4j.kernel.SequenceBoundaries.ofLengths(64, 200, 8, 240);
        long s = seqs.totalLength(), h = 4, hkv = 2, d = 64;
        org.usp4j.kernel.SequenceSegments.Builder b = org.usp4j.kernel.SequenceSegments.builder();
        for (int i = 0; i < seqs.count(); i++) {
            b.add(seqs.start(i), seqs.end(i), seqs.start(i), seqs.end(i));
        }
        Mask mask = Mask.CAUSAL.withSegments(b.build());
        float scale = 0.125f;
        try (Arena arena = Arena.ofConfined(); TensorAllocator dev = gpu.newAllocator()) {
            Tensor q = GpuTests.randomHost(arena, DType.BF16, 31, 1, s, h, d);
            Tensor k = GpuTests.randomHost(arena, DType.BF16, 32, 1, s, hkv, d);
            Tensor v = GpuTests.randomHost(arena, DType.BF16, 33, 1, s, hkv, d);
            Tensor dout = GpuTests.randomHost(arena, DType.BF16, 34, 1, s, h, d);
            Tensor qd = upload(dev, q), kd = upload(dev, k), vd = upload(dev, v), doutD = upload(dev, dout);
            Tensor outD = dev.allocate(DType.BF16, 1, s, h, d);
            Tensor lseD = dev.allocate(DType.F32, 1, h, s);
            gpu.kernel().validateForward(new org.usp4j.kernel.AttentionShapes(1, s, s, h, hkv, d), DType.BF16, mask);
            gpu.kernel().forward(qd, kd, vd, mask, scale, outD, lseD);
            Tensor dq = dev.allocate(DType.F32, 1, s, h, d);
            Tensor dk = dev.allocate(DType.F32, 1, s, hkv, d);
            Tensor dv = dev.allocate(DType.F32, 1, s, hkv, d);
            gpu.kernel().backward(qd, kd, vd, outD, doutD, lseD, mask, scale, dq, dk, dv, false);
            org.usp4j.kernel.PackedReference ref = org.usp4j.kernel.PackedReference.of(arena, q, k, v, dout, seqs,
                    true, scale);
            assertError("out", ref.out(), GpuTests.toHost(gpu, arena, outD), 1e-2);
            assertError("lse", ref.lse(), GpuTests.toHost(gpu, arena, lseD), 1e-4);
            assertError("dq", ref.dq(), GpuTests.toHost(gpu, arena, dq), 2e-2);
            assertError("dk", ref.dk(), GpuTests.toHost(gpu, arena, dk), 2e-2);
            assertError("dv", ref.dv(), GpuTests.toHost(gpu, arena, dv), 2e-2);
            Mask withOneToken = Mask.CAUSAL.withSegments(org.usp4j.kernel.SequenceSegments.builder().add(0, 1, 0, 1)
                    .add(1, 64, 1, 64).build());
            assertThrows(IllegalArgumentException.class, () -> gpu.kernel().validateBackward(
                    new org.usp4j.kernel.AttentionShapes(1, 64, 64, h, hkv, d), DType.BF16, withOneToken));
        }
    }

    @Test
    void refusesWhatCudnnCannotRunBeforeAnyNativeCall() {
        try (Arena arena = Arena.ofConfined(); TensorAllocator dev = gpu.newAllocator()) {
            Tensor f32 = dev.allocate(DType.F32, 1, 64, 2, 64);
            Tensor lse = dev.allocate(DType.F32, 1, 2, 64);
            assertThrows(IllegalArgumentException.class,
                    () -> gpu.kernel().forward(f32, f32, f32, Mask.NONE, 0.1f, f32, lse));
            Tensor odd = dev.allocate(DType.BF16, 1, 64, 2, 36);
            assertThrows(IllegalArgumentException.class,
                    () -> gpu.kernel().forward(odd, odd, odd, Mask.NONE, 0.1f, odd, lse));
            Tensor host = Tensor.allocate(arena, DType.BF16, 1, 64, 2, 64);
            Tensor devT = dev.allocate(DType.BF16, 1, 64, 2, 64);
            assertThrows(IllegalArgumentException.class,
                    () -> gpu.kernel().forward(host, devT, devT, Mask.NONE, 0.1f, devT, lse));
        }
    }

    private static Tensor upload(TensorAllocator dev, Tensor host) {
        Tensor d = dev.allocate(host.dtype(), host.shape());
        gpu.copy(host, d);
        return d;
    }

    private static void assertError(String what, Tensor expected, Tensor actual, double tolerance) {
        double err = HostTensors.relativeError(actual, expected);
        assertTrue(err <= tolerance, () -> what + ": relative error " + err + " > " + tolerance);
    }
}
