package org.usp4j.cuda;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

/** Needs a GPU: skipped (by assumption) where the runtime sees no device. */
@Tag("gpu")
class CudaGpuTest {

    @BeforeEach
    void requireDevice() {
        assumeTrue(Cuda.isDeviceAvailable(), "no CUDA device");
        Cuda.setDevice(0);
    }

    @Test
    void devicePropertiesAreSane() {
        DeviceProperties p = Cuda.deviceProperties(0);
        assertFalse(p.name().isBlank());
        assertTrue(p.computeCapabilityMajor() >= 5, p.toString());
        assertTrue(p.multiprocessorCount() > 0, p.toString());
        DeviceMemoryInfo m = Cuda.memoryInfo();
        assertEquals(p.totalMemoryBytes(), m.totalBytes());
        assertTrue(m.freeBytes() > 0 && m.freeBytes() <= m.totalBytes());
        assertTrue(Cuda.driverVersion() >= Cuda.runtimeVersion(), "driver older than the runtime");
    }

    @Test
    void hostDeviceRoundTripThroughPinnedMemoryAndStreams() {
        int n = 1 << 16;
        long bytes = 4L * n;
        try (var stream = CudaStream.create(); var a = DeviceBuffer.allocate(bytes);
             var b = DeviceBuffer.allocateAsync(bytes, stream); var host = PinnedBuffer.allocate(bytes);
             Arena arena = Arena.ofConfined()) {
            MemorySegment in = arena.allocate(bytes);
            for (int i = 0; i < n; i++) {
                in.setAtIndex(ValueLayout.JAVA_FLOAT, i, i * 0.5f - 3);
            }
            CudaMemory.copyToDevice(in, a.pointer());
            CudaMemory.copyDeviceToDeviceAsync(a.pointer(), b.pointer(), stream);
            CudaMemory.copyToHostAsync(b.pointer(), host.segment(), stream);
            stream.synchronize();
            assertTrue(stream.isIdle());
            assertEquals(-1L, in.mismatch(host.segment()));
            CudaMemory.memsetAsync(b.pointer(), 0, stream);
            CudaMemory.copyToHostAsync(b.pointer(), host.segment(), stream);
            stream.synchronize();
            for (int i = 0; i < n; i++) {
                assertEquals(0f, host.segment().getAtIndex(ValueLayout.JAVA_FLOAT, i));
            }
        }
    }

    @Test
    void copy2DMovesStridedRows() {
        int rows = 33;
        int rowFloats = 16;
        int pitchFloats = 48;
        try (var stream = CudaStream.create(); var src = DeviceBuffer.allocate(4L * rows * pitchFloats);
             var dst = DeviceBuffer.allocate(4L * rows * rowFloats); Arena arena = Arena.ofConfined()) {
            MemorySegment in = arena.allocate(4L * rows * pitchFloats);
            for (int i = 0; i < rows * pitchFloats; i++) {
                in.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
            }
            CudaMemory.copyToDevice(in, src.pointer());
            // column block [8, 24) of each row -> a dense [rows, 16] matrix
            CudaMemory.copy2DAsync(src.pointer().slice(32, src.byteSize() - 32), 4L * pitchFloats, dst.pointer(),
                    4L * rowFloats, 4L * rowFloats, rows, stream);
            MemorySegment out = arena.allocate(dst.byteSize());
            stream.synchronize();
            CudaMemory.copyToHost(dst.pointer(), out);
            for (int r = 0; r < rows; r++) {
                for (int c = 0; c < rowFloats; c++) {
                    assertEquals(r * pitchFloats + 8 + c, out.getAtIndex(ValueLayout.JAVA_FLOAT, r * rowFloats + c));
                }
            }
        }
    }

    @Test
    void eventsOrderStreamsAndTimeWork() {
        try (var s1 = CudaStream.create(); var s2 = CudaStream.create(); var start = CudaEvent.create();
             var end = CudaEvent.create(); var done = CudaEvent.create(false);
             var buf = DeviceBuffer.allocate(64L << 20)) {
            start.record(s1);
            for (int i = 0; i < 8; i++) {
                CudaMemory.memsetAsync(buf.pointer(), i, s1);
            }
            end.record(s1);
            done.record(s1);
            s2.waitFor(done);
            s2.synchronize();
            assertTrue(done.isComplete(), "s2 finished before the work it waited for");
            end.synchronize();
            float ms = CudaEvent.elapsedMillis(start, end);
            assertTrue(ms > 0 && ms < 10_000, "elapsed " + ms + " ms");
            assertThrows(IllegalArgumentException.class, () -> CudaEvent.elapsedMillis(start, done));
        }
    }

    @Test
    @SuppressWarnings("try") // closes the module early on purpose
    void ptxKernelLaunchesWithTypedArguments() {
        int n = 1000;
        try (var module = PtxModule.load(GpuKernels.FILL_PTX); var stream = CudaStream.create();
             var out = DeviceBuffer.allocate(4L * n); Arena arena = Arena.ofConfined()) {
            CudaKernel kernel = module.kernel("fill_affine");
            assertSame(kernel, module.kernel("fill_affine"));
            kernel.launch(Dim3.of((n + 255) / 256), Dim3.of(256), 0, stream,
                    KernelArg.pointer(out), KernelArg.i32(n), KernelArg.f32(0.5f), KernelArg.f32(-1f),
                    KernelArg.i64(1_000_000L));
            MemorySegment host = arena.allocate(4L * n);
            stream.synchronize();
            CudaMemory.copyToHost(out.pointer(), host);
            for (int i = 0; i < n; i++) {
                assertEquals(0.5f * (i + 1_000_000L) - 1f, host.getAtIndex(ValueLayout.JAVA_FLOAT, i), 1e-3f, "i=" + i);
            }
            assertThrows(CudaException.class, () -> module.kernel("no_such_kernel"));
            module.close();
            assertThrows(IllegalStateException.class, () -> kernel.launch(Dim3.of(1), Dim3.of(1), 0, stream));
        }
    }

    @Test
    void useAfterCloseThrowsAndDoubleCloseIsHarmless() {
        var buf = DeviceBuffer.allocate(1024);
        var stream = CudaStream.create();
        buf.close();
        buf.close();
        stream.close();
        stream.close();
        assertThrows(IllegalStateException.class, buf::pointer);
        assertThrows(IllegalStateException.class, stream::handle);
        assertThrows(IllegalStateException.class, stream::synchronize);
        var pinned = PinnedBuffer.allocate(64);
        MemorySegment seg = pinned.segment();
        pinned.close();
        assertThrows(IllegalStateException.class, () -> seg.get(ValueLayout.JAVA_BYTE, 0));
    }
}
