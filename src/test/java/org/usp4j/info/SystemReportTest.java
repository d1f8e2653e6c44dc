package org.usp4j.info;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.nativelib.LibraryVersion;
import org.usp4j.nativelib.LoadedLibrary;
import org.usp4j.nativelib.NativeLibrary;
import org.usp4j.nativelib.ResolverEnvironment;

/** The diagnosis on a machine without libraries, and the paths each library version allows. */
class SystemReportTest {

    @TempDir
    Path empty;

    @Test
    void anEmptyMachineReportsEveryLibraryMissingWithThePlacesTried() {
        ResolverEnvironment env = new ResolverEnvironment(Map.of(), Map.of(), empty, empty, empty.resolve("cache"),
                ClassLoader.getPlatformClassLoader(), false);
        SystemReport r = SystemReport.collect("test", env, false);
        assertEquals(NativeLibrary.values().length, r.libraries().size());
        for (SystemReport.Library lib : r.libraries()) {
            assertFalse(lib.found(), lib.toString());
            assertFalse(lib.placesTried().isEmpty(), lib.toString());
            assertTrue(lib.hint().contains("USP4J_"), lib.hint());
        }
        assertTrue(r.cuda().devices().isEmpty());
        assertTrue(r.cuda().problem().contains("no CUDA runtime"), r.cuda().problem());
        assertFalse(r.cudnnSdpa().compositeGraph());
        assertFalse(r.ncclAllToAll().nativeAllToAll());
        assertEquals(Runtime.getRuntime().availableProcessors(), r.cpu().processors());
        assertEquals(System.getProperty("java.home"), r.jdk().home());
    }

    @ParameterizedTest
    @CsvSource({"9.0.0, false", "9.5.1, false", "9.13.0, false", "9.13.1, true", "9.21.0, true"})
    void theDedicatedSdpaOperationComesWithCudnn9131(String version, boolean dedicated) {
        SystemReport.CudnnSdpa s = SystemReport.cudnnSdpa(loaded(NativeLibrary.CUDNN, version));
        assertTrue(s.compositeGraph());
        assertEquals(dedicated, s.dedicatedOperation());
        assertEquals("composite graph", s.used());
        assertTrue(s.note().contains(version), s.note());
    }

    @ParameterizedTest
    @CsvSource({"2.18.1, false", "2.23.4, false", "2.28.2, false", "2.28.3, true", "2.30.0, true"})
    void theNativeAllToAllComesWithNccl2283(String version, boolean nativeA2a) {
        SystemReport.NcclAllToAll a = SystemReport.ncclAllToAll(loaded(NativeLibrary.NCCL, version));
        assertEquals(nativeA2a, a.nativeAllToAll());
        assertEquals(nativeA2a ? "ncclAlltoAll" : "grouped ncclSend/ncclRecv", a.used());
    }

    private static LoadedLibrary loaded(NativeLibrary lib, String version) {
        return new LoadedLibrary(lib, Path.of("/x/" + lib.fileName()), LibraryVersion.parse(version), "test");
    }
}
