package org.usp4j.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.usp4j.nativelib.FakeMachine;
import org.usp4j.nativelib.LibraryNotFoundException;
import org.usp4j.nativelib.LoadedLibrary;
import org.usp4j.nativelib.NativeLibraries;
import org.usp4j.nativelib.NativeLibrary;

/** Where the CUDA runtime is looked for, on made-up machines holding the real library files. */
class CudaLibraryResolutionTest {

    @TempDir
    Path tmp;

    @Test
    void cudaHomeToolkitIsFound() throws Exception {
        Path real = Cuda.library().path();
        FakeMachine m = new FakeMachine(tmp).env("CUDA_HOME", tmp.resolve("opt/cuda-13").toString());
        m.link("opt/cuda-13/lib64/libcudart.so.13", real);
        LoadedLibrary found = NativeLibraries.resolve(NativeLibrary.CUDA_RUNTIME, m.environment());
        assertEquals(tmp.resolve("opt/cuda-13/lib64/libcudart.so.13"), found.path());
        assertTrue(found.location().contains("CUDA_HOME="), found.location());
        assertEquals(13, found.version().major());
    }

    @Test
    void explicitSettingWinsAndNamesAFileOrADirectory() throws Exception {
        Path real = Cuda.library().path();
        FakeMachine m = new FakeMachine(tmp);
        m.link("usr/local/cuda/lib64/libcudart.so.13", real);
        Path custom = m.link("custom/libcudart-custom.so", real);
        m.env(NativeLibrary.CUDA_RUNTIME.environmentVariable(), custom.toString());
        LoadedLibrary viaEnv = NativeLibraries.resolve(NativeLibrary.CUDA_RUNTIME, m.environment());
        assertEquals(custom, viaEnv.path());
        assertTrue(viaEnv.location().startsWith("environment variable USP4J_CUDART_PATH="), viaEnv.location());
        m.property("usp4j.cudart.path", tmp.resolve("usr/local/cuda/lib64").toString());
        LoadedLibrary viaProperty = NativeLibraries.resolve(NativeLibrary.CUDA_RUNTIME, m.environment());
        assertEquals(tmp.resolve("usr/local/cuda/lib64/libcudart.so.13"), viaProperty.path());
        assertTrue(viaProperty.location().startsWith("system property usp4j.cudart.path="), viaProperty.location());
    }

    @Test
    void aRuntimeOfAnotherMajorVersionIsRejectedWithItsVersion() throws Exception {
        FakeMachine m = new FakeMachine(tmp);
        // CUDA 12.6's runtime under the 13 file name: probed, found to be 12.x, refused.
        m.link("wrong/libcudart.so.13", FakeMachine.unpacked("libcudart.so.12"));
        m.property("usp4j.cudart.path", tmp.resolve("wrong").toString());
        var e = assertThrows(LibraryNotFoundException.class,
                () -> NativeLibraries.resolve(NativeLibrary.CUDA_RUNTIME, m.environment()));
        assertEquals(1, e.placesTried().size(), e.getMessage());
        assertTrue(e.placesTried().get(0).contains("is version 12."), e.getMessage());
        assertTrue(e.getMessage().contains("[13.0.0, 14.0.0)"), e.getMessage());
    }

    @Test
    void aFileThatIsNotTheLibraryIsReportedAsUnusable() throws Exception {
        FakeMachine m = new FakeMachine(tmp);
        m.link("odd/libcudart.so.13", FakeMachine.unpacked("libnccl.so.2"));
        m.property("usp4j.cudart.path", tmp.resolve("odd/libcudart.so.13").toString());
        var e = assertThrows(LibraryNotFoundException.class,
                () -> NativeLibraries.resolve(NativeLibrary.CUDA_RUNTIME, m.environment()));
        assertTrue(e.placesTried().get(0).contains("cannot be used") && e.placesTried().get(0).contains("cudaRuntimeGetVersion"),
                e.getMessage());
    }
}
