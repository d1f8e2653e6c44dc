package org.usp4j.nativelib;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * With several cuDNN copies on the machine (the system's, PyTorch's wheel), the newest acceptable one is
 * chosen and the others are reported; an explicit setting still wins; other libraries keep the first one
 * on the search path. The files are made up and get their versions from the test's probe.
 */
class NewestCudnnTest {

    @TempDir
    Path tmp;

    private final Map<Path, LibraryVersion> versions = new HashMap<>();

    private Path cudnnIn(String dir, String version) throws IOException {
        Path d = Files.createDirectories(tmp.resolve(dir));
        Files.writeString(d.resolve("libcudnn_graph.so.9"), "");
        Path file = Files.writeString(d.resolve("libcudnn.so.9"), "");
        versions.put(file.toAbsolutePath().normalize(), LibraryVersion.parse(version));
        return file.toAbsolutePath().normalize();
    }

    private LoadedLibrary resolve(NativeLibrary library, FakeMachine m) {
        return NativeLibraries.resolve(library, m.environment(), file -> {
            LibraryVersion v = versions.get(file);
            if (v == null) {
                throw new IllegalStateException("no made-up version for " + file);
            }
            return v;
        });
    }

    @Test
    void theNewestCudnnFoundIsChosenAndTheOthersAreListed() throws IOException {
        Path older = cudnnIn("system", "9.14.0");
        Path newer = cudnnIn("torch/lib", "9.19.0");
        Path tooNew = cudnnIn("future", "10.0.0");
        FakeMachine m = new FakeMachine(tmp.resolve("machine")).env("LD_LIBRARY_PATH",
                older.getParent() + ":" + tooNew.getParent() + ":" + newer.getParent());
        LoadedLibrary found = resolve(NativeLibrary.CUDNN, m);
        assertEquals(newer, found.path());
        assertEquals(LibraryVersion.of(9, 19, 0), found.version());
        assertEquals(1, found.alsoFound().size(), found.alsoFound().toString());
        assertTrue(found.alsoFound().get(0).startsWith("9.14.0 at " + older), found.alsoFound().toString());
    }

    @Test
    void equalVersionsKeepTheSearchOrder() throws IOException {
        Path first = cudnnIn("a", "9.19.0");
        cudnnIn("b", "9.19.0");
        FakeMachine m = new FakeMachine(tmp.resolve("machine")).env("LD_LIBRARY_PATH",
                first.getParent() + ":" + tmp.resolve("b"));
        assertEquals(first, resolve(NativeLibrary.CUDNN, m).path());
    }

    @Test
    void anExplicitPathStillWins() throws IOException {
        Path older = cudnnIn("pinned", "9.14.0");
        Path newer = cudnnIn("torch/lib", "9.19.0");
        FakeMachine m = new FakeMachine(tmp.resolve("machine")).env("LD_LIBRARY_PATH", newer.getParent().toString())
                .env("USP4J_CUDNN_PATH", older.getParent().toString());
        LoadedLibrary found = resolve(NativeLibrary.CUDNN, m);
        assertEquals(older, found.path());
        assertEquals(List.of(), found.alsoFound());
    }

    @Test
    void otherLibrariesKeepTheFirstOnTheSearchPath() throws IOException {
        Path a = Files.createDirectories(tmp.resolve("a"));
        Path b = Files.createDirectories(tmp.resolve("b"));
        Path first = Files.writeString(a.resolve("libnccl.so.2"), "").toAbsolutePath().normalize();
        Path second = Files.writeString(b.resolve("libnccl.so.2"), "").toAbsolutePath().normalize();
        versions.put(first, LibraryVersion.of(2, 21, 0));
        versions.put(second, LibraryVersion.of(2, 28, 3));
        FakeMachine m = new FakeMachine(tmp.resolve("machine")).env("LD_LIBRARY_PATH", a + ":" + b);
        assertEquals(first, resolve(NativeLibrary.NCCL, m).path());
    }
}
