package org.usp4j.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.gpu.sdpa.CudnnBackends;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/** The CUDA backend's element-wise operations give the CPU backend's results, bit for bit where exact. */
@Tag("gpu")
class CudaBackendGpuTest {

    private static CudaBackend gpu;
    private static CpuBackend cpu;

    @BeforeAll
    static void open() {
        if (!GpuTests.deviceAvailable()) {
            return;
        }
        gpu = CudnnBackends.create(0);
        cpu = new CpuBackend(new ReferenceAttention());
    }

    @BeforeEach
    void requireDevice() {
        GpuTests.requireDevice();
    }

    @AfterAll
    static void close() {
        if (gpu != null) {
            gpu.close();
            cpu.close();
        }
    }

    @Test
    void copiesEveryLayoutTheStrategiesUse() {
        try (Arena arena = Arena.ofConfined(); TensorAllocator dev = gpu.newAllocator()) {
            Tensor host = GpuTests.randomHost(arena, DType.BF16, 1, 2, 64, 8, 40);
            Tensor d = dev.allocate(DType.BF16, 2, 64, 8, 40);
            gpu.copy(host, d); // host -> device, contiguous
            assertEquals(-1L, host.contiguousSegment().mismatch(GpuTests.toHost(gpu, arena, d).contiguousSegment()));

            // Ulysses packing: a head slice (a 2-D copy) into a contiguous buffer.
            Tensor slice = d.slice(2, 4, 2);
            Tensor packed = dev.allocate(DType.BF16, 2, 64, 2, 40);
            gpu.copy(slice, packed);
            assertExact(host.slice(2, 4, 2), GpuTests.toHost(gpu, arena, packed));

            // A 5-D permuted view and a conversion to float32 (the strided kernel).
            Tensor view5 = d.view(2, 64, 2, 4, 40).transpose(2, 3);
            Tensor f32 = dev.allocate(DType.F32, view5.shape());
            gpu.copy(view5, f32);
            assertExact(host.view(2, 64, 2, 4, 40).transpose(2, 3), GpuTests.toHost(gpu, arena, f32));

            // A 6-D view with a zero stride (KV-head replication).
            long[] s = {2, 64, 8, 1, 40};
            Tensor base = d.view(s);
            Tensor replicated = base.withGeometry(new long[] {2, 64, 8, 3, 1, 40},
                    new long[] {64L * 8 * 40, 8 * 40, 40, 0, 40, 1}, 0);
            Tensor rep = dev.allocate(DType.BF16, replicated.shape());
            gpu.copy(replicated, rep);
            Tensor hostRep = host.view(s).withGeometry(replicated.shape(), replicated.strides(), 0);
            assertExact(hostRep, GpuTests.toHost(gpu, arena, rep));

            // Device -> strided host (gathering into a global tensor).
            Tensor global = Tensor.allocate(arena, DType.F32, 2, 128, 8, 40);
            gpu.copy(d, global.slice(1, 64, 64));
            assertExact(host, global.slice(1, 64, 64));
        }
    }

    @Test
    void fillAddAndMergeMatchTheCpuBackend() {
        try (Arena arena = Arena.ofConfined(); TensorAllocator dev = gpu.newAllocator()) {
            long b = 2, s = 48, h = 4, d = 24;
            Tensor out = GpuTests.randomHost(arena, DType.F32, 2, b, s, h, d);
            Tensor lse = GpuTests.randomHost(arena, DType.F32, 3, b, h, s);
            Tensor blockOut = GpuTests.randomHost(arena, DType.BF16, 4, b, s, h, d);
            Tensor blockLse = GpuTests.randomHost(arena, DType.F32, 5, b, h, s);
            // Rows that saw no key yet, and block rows that saw none.
            for (long i = 0; i < s; i += 7) {
                lse.set(Float.NEGATIVE_INFINITY, 0, 1, i);
                blockLse.set(Float.NEGATIVE_INFINITY, 1, 2, i);
            }
            Tensor[] dv = new Tensor[4];
            Tensor[] hv = {out, lse, blockOut, blockLse};
            for (int i = 0; i < 4; i++) {
                dv[i] = dev.allocate(hv[i].dtype(), hv[i].shape());
                gpu.copy(hv[i], dv[i]);
            }
            cpu.mergeAttention(out, lse, blockOut, blockLse);
            gpu.mergeAttention(dv[0], dv[1], dv[2], dv[3]);
            assertClose(out, GpuTests.toHost(gpu, arena, dv[0]), 1e-6);
            assertClose(lse, GpuTests.toHost(gpu, arena, dv[1]), 1e-6);

            Tensor acc = dev.allocate(DType.F32, b, s, h, d);
            gpu.fill(acc, 0.5f);
            gpu.add(acc, dv[2]);
            Tensor expected = Tensor.allocate(arena, DType.F32, b, s, h, d);
            cpu.fill(expected, 0.5f);
            cpu.add(expected, blockOut);
            assertClose(expected, GpuTests.toHost(gpu, arena, acc), 0);
        }
    }

    private static void assertExact(Tensor expected, Tensor actual) {
        assertEquals(0.0, HostTensors.relativeError(actual, expected), () -> "differs: " + actual.describe());
    }

    private static void assertClose(Tensor expected, Tensor actual, double tolerance) {
        double err = HostTensors.relativeError(actual, expected);
        assertTrue(err <= tolerance, () -> "relative error " + err + " > " + tolerance);
    }
}
