package org.usp4j.nccl;

import static org.junit.jupiter.api.Assertions.*;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.usp4j.nativelib.FakeMachine;
import org.usp4j.nativelib.LibraryNotFoundException;
import org.usp4j.nativelib.LoadedLibrary;
import org.usp4j.nativelib.NativeLibraries;
import org.usp4j.nativelib.NativeLibrary;

/** Where NCCL is looked for, on made-up machines holding the real library file. */
class NcclLibraryResolutionTest {

    @TempDir
    Path tmp;

    @Test
    void pythonWheelInAVirtualEnvironmentUnderOptIsFound() throws Exception {
        FakeMachine m = new FakeMachine(tmp);
        m.link("opt/train/.venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2", FakeMachine.unpacked("libnccl.so.2"));
        LoadedLibrary found = NativeLibraries.resolve(NativeLibrary.NCCL, m.environment());
        assertTrue(found.location().startsWith("Python packages in " + tmp.resolve("opt/train/.venv/lib/python3.12/site-packages")),
                found.location());
        assertEquals(Nccl.version(), found.version());
    }

    @Test
    void cu13WheelLayoutAndVirtualEnvVariableAreFound() throws Exception {
        FakeMachine m = new FakeMachine(tmp).env("VIRTUAL_ENV", tmp.resolve("venv").toString());
        m.link("venv/lib/python3.11/site-packages/nvidia/cu13/lib/libnccl.so.2", FakeMachine.unpacked("libnccl.so.2"));
        LoadedLibrary found = NativeLibraries.resolve(NativeLibrary.NCCL, m.environment());
        assertEquals(tmp.resolve("venv/lib/python3.11/site-packages/nvidia/cu13/lib/libnccl.so.2"), found.path());
    }

    @Test
    void ldLibraryPathComesBeforePythonPackages() throws Exception {
        FakeMachine m = new FakeMachine(tmp).env("LD_LIBRARY_PATH", tmp.resolve("a") + ":" + tmp.resolve("b"));
        m.link("opt/x/.venv/lib/python3.12/site-packages/nvidia/nccl/lib/libnccl.so.2", FakeMachine.unpacked("libnccl.so.2"));
        m.link("b/libnccl.so.2", FakeMachine.unpacked("libnccl.so.2"));
        LoadedLibrary found = NativeLibraries.resolve(NativeLibrary.NCCL, m.environment());
        assertEquals(tmp.resolve("b/libnccl.so.2"), found.path());
        assertTrue(found.location().startsWith("LD_LIBRARY_PATH="), found.location());
    }

    @Test
    void notFoundListsEveryPlaceTriedAndTheSettingsToUse() {
        FakeMachine m = new FakeMachine(tmp).env("CUDA_HOME", tmp.resolve("cuda").toString())
                .env("LD_LIBRARY_PATH", tmp.resolve("lib").toString());
        var e = assertThrows(LibraryNotFoundException.class, () -> NativeLibraries.resolve(NativeLibrary.NCCL, m.environment()));
        List<String> tried = e.placesTried();
        String[] expectedOrder = {"CUDA toolkit (CUDA_HOME=", "CUDA toolkit " + tmp.resolve("usr/local/cuda"),
                "LD_LIBRARY_PATH=", "system loader (", "Python site-packages", "bytedeco redist jar"};
        assertEquals(expectedOrder.length, tried.size(), e.getMessage());
        for (int i = 0; i < expectedOrder.length; i++) {
            assertTrue(tried.get(i).startsWith(expectedOrder[i]), tried.get(i));
            assertTrue(tried.get(i).endsWith("no libnccl.so.2"), tried.get(i));
        }
        assertTrue(e.getMessage().contains("-Dusp4j.nccl.path=") && e.getMessage().contains("USP4J_NCCL_PATH"), e.getMessage());
        assertTrue(e.getMessage().contains("2.18.0"), e.getMessage());
    }

    @Test
    void anExplicitSettingThatFindsNothingDoesNotFallBack() throws Exception {
        FakeMachine m = new FakeMachine(tmp).property("usp4j.nccl.path", tmp.resolve("empty").toString());
        m.link("usr/local/cuda/lib64/libnccl.so.2", FakeMachine.unpacked("libnccl.so.2"));
        var e = assertThrows(LibraryNotFoundException.class, () -> NativeLibraries.resolve(NativeLibrary.NCCL, m.environment()));
        assertEquals(List.of("system property usp4j.nccl.path=" + tmp.resolve("empty") + ": no libnccl.so.2"), e.placesTried());
    }

    @Test
    void ldconfigListingIsParsed() {
        String listing = """
                1234 libs found in cache `/etc/ld.so.cache'
                \tlibnccl.so.2 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnccl.so.2
                \tlibnccl.so.2.1 (libc6,x86-64) => /elsewhere/libnccl.so.2.1
                \tlibnccl.so (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libnccl.so
                """;
        assertEquals(List.of(Path.of("/usr/lib/x86_64-linux-gnu/libnccl.so.2")),
                org.usp4j.nativelib.LibraryResolutionAccess.parseLdconfig(listing, "libnccl.so.2"));
    }
}
