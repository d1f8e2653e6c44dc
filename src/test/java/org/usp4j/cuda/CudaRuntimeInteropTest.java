package org.usp4j.cuda;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.usp4j.bindings.cuda.CUuuid_st;
import org.usp4j.bindings.cuda.CudaRuntimeApi;
import org.usp4j.bindings.cuda.cudaDeviceProp;
import org.usp4j.bindings.cuda.cudaPointerAttributes;
import org.usp4j.bindings.cuda.dim3;
import org.usp4j.nativelib.BoundFunctions;
import org.usp4j.nativelib.LoadedLibrary;
import org.usp4j.nativelib.NativeLibraries;
import org.usp4j.nativelib.NativeLibrary;

/** The CUDA 13 runtime installed on the machine, through the generated bindings and the wrappers. */
class CudaRuntimeInteropTest {

    /** True when the runtime reports no driver, as on CI machines without a GPU. */
    static boolean noDriver() {
        return Cuda.driverVersion() == 0;
    }

    @Test
    void loadsCuda13RuntimeAndReportsItsVersion() {
        LoadedLibrary loaded = Cuda.library();
        assertEquals(NativeLibrary.CUDA_RUNTIME, loaded.library());
        assertEquals(13, loaded.version().major(), loaded.toString());
        assertTrue(loaded.path().getFileName().toString().startsWith("libcudart.so"), loaded.toString());
        int runtime = Cuda.runtimeVersion();
        assertEquals(loaded.version().major(), runtime / 1000);
        assertEquals(loaded.version().minor(), runtime % 1000 / 10);
    }

    @Test
    void everyBoundFunctionResolvesInTheRuntime() throws ReflectiveOperationException {
        Cuda.library();
        List<String> functions = BoundFunctions.functions(CudaRuntimeApi.class);
        assertTrue(functions.size() >= 40, "bound functions: " + functions);
        for (String f : functions) {
            // CUDA 13.0 is the minimum runtime, and every function comes from its headers: none is optional.
            assertTrue(NativeLibrary.CUDA_RUNTIME.functionSince(f).isEmpty(), f);
            assertTrue(NativeLibraries.hasFunction(NativeLibrary.CUDA_RUNTIME, f), f + " is not exported");
            MemorySegment address = (MemorySegment) BoundFunctions.address(CudaRuntimeApi.class, f);
            assertNotEquals(0L, address.address(), f);
        }
    }

    @Test
    void errorNamesOfTheRuntimeMatchTheBoundConstants() {
        Map<String, Integer> constants = BoundFunctions.intConstants(CudaRuntimeApi.class);
        int checked = 0;
        for (var e : constants.entrySet()) {
            if (e.getKey().startsWith("cudaError") || e.getKey().equals("cudaSuccess")) {
                assertEquals(e.getKey(), Cuda.errorName(e.getValue()), "code " + e.getValue());
                assertFalse(Cuda.errorString(e.getValue()).isBlank(), e.getKey());
                checked++;
            }
        }
        assertTrue(checked >= 15, "error constants checked: " + checked);
        assertEquals("unrecognized error code", Cuda.errorName(123456));
    }

    @Test
    void withoutDriverTheDeviceCountBecomesACudaException() {
        assumeTrue(noDriver(), "a CUDA driver is installed");
        CudaException e = assertThrows(CudaException.class, Cuda::deviceCount);
        assertEquals("cudaGetDeviceCount", e.function());
        assertTrue(e.code() == CudaRuntimeApi.cudaErrorInsufficientDriver() || e.code() == CudaRuntimeApi.cudaErrorNoDevice(),
                "code " + e.code());
        assertEquals(Cuda.errorName(e.code()), e.errorName());
        assertEquals(Cuda.errorString(e.code()), e.description());
        assertTrue(e.getMessage().contains(e.errorName()) && e.getMessage().contains(e.description()), e.getMessage());
        assertFalse(Cuda.isDeviceAvailable());
    }

    @Test
    void withoutDriverAllocationsStreamsEventsAndModulesThrowInsteadOfCrashing() {
        assumeTrue(noDriver(), "a CUDA driver is installed");
        assertThrows(CudaException.class, () -> DeviceBuffer.allocate(256));
        assertThrows(CudaException.class, () -> PinnedBuffer.allocate(256));
        assertThrows(CudaException.class, CudaStream::create);
        assertThrows(CudaException.class, CudaEvent::create);
        assertThrows(CudaException.class, () -> PtxModule.load(GpuKernels.FILL_PTX));
        assertThrows(CudaException.class, () -> Cuda.deviceProperties(0));
        // The failed calls left no error behind for the next caller.
        assertEquals(0, Cuda.runtimeVersion() / 100_000);
    }

    @Test
    void structLayoutsMatchTheCCompiler() {
        // sizeof/offsetof measured with gcc 12 against the CUDA 13.0 headers (x86-64).
        assertEquals(12, dim3.layout().byteSize());
        assertEquals(1008, cudaDeviceProp.layout().byteSize());
        assertEquals(0, cudaDeviceProp.name$offset());
        assertEquals(256, cudaDeviceProp.name$layout().byteSize());
        assertEquals(288, cudaDeviceProp.totalGlobalMem$offset());
        assertEquals(360, cudaDeviceProp.major$offset());
        assertEquals(364, cudaDeviceProp.minor$offset());
        assertEquals(384, cudaDeviceProp.multiProcessorCount$offset());
        assertEquals(88, cudaPointerAttributes.layout().byteSize());
        assertEquals(16, CUuuid_st.layout().byteSize());
    }

    @Test
    void badArgumentsAreRefusedBeforeAnyNativeCall() {
        var fake = new org.usp4j.tensor.DevicePointer(0x1000, 64, 0);
        assertThrows(IllegalArgumentException.class, () -> DeviceBuffer.allocate(0));
        assertThrows(IllegalArgumentException.class, () -> PinnedBuffer.allocate(-1));
        assertThrows(IllegalArgumentException.class, () -> Cuda.setDevice(-1));
        assertThrows(IllegalArgumentException.class, () -> CudaMemory.copyToDevice(MemorySegment.ofArray(new byte[8]), fake));
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            var tooBig = arena.allocate(65);
            var e = assertThrows(IllegalArgumentException.class, () -> CudaMemory.copyToDevice(tooBig, fake));
            assertTrue(e.getMessage().contains("65") && e.getMessage().contains("64"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> CudaMemory.copy2DAsync(fake, 8, fake, 8, 16, 2, null));
        assertThrows(IllegalArgumentException.class, () -> CudaMemory.copy2DAsync(fake, 16, fake, 16, 16, 5, null));
        assertThrows(IllegalArgumentException.class, () -> CudaMemory.memsetAsync(fake, 256, null));
        var noStream = assertThrows(IllegalArgumentException.class, () -> CudaMemory.memsetAsync(fake, 0, null));
        assertEquals("stream is null", noStream.getMessage());
        assertThrows(IllegalArgumentException.class, () -> PtxModule.load("not ptx"));
        assertThrows(IllegalArgumentException.class, () -> new Dim3(0, 1, 1));
    }
}
