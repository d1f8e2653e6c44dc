package org.usp4j.cudnn;

import static org.junit.jupiter.api.Assertions.*;

import java.io.OutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.FileTime;
import java.util.jar.JarEntry;
import java.util.jar.JarOutputStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.usp4j.nativelib.FakeMachine;
import org.usp4j.nativelib.LoadedLibrary;
import org.usp4j.nativelib.NativeLibraries;
import org.usp4j.nativelib.NativeLibrary;

/** cuDNN from a bytedeco-style redist jar on the class path: extracted once, with its sub-libraries. */
class CudnnLibraryResolutionTest {

    @TempDir
    Path tmp;

    @Test
    void redistJarIsExtractedOnceWithItsSubLibraries() throws Exception {
        Path jar = tmp.resolve("cuda-9.x-linux-x86_64-redist.jar");
        String folder = "org/bytedeco/cuda/linux-x86_64/";
        byte[] companion = Files.readAllBytes(FakeMachine.unpacked("libcudnn_graph.so.9"));
        try (var out = new JarOutputStream(Files.newOutputStream(jar))) {
            put(out, folder + "libcudnn.so.9", Files.readAllBytes(FakeMachine.unpacked("libcudnn.so.9")));
            put(out, folder + "libcudnn_graph.so.9", companion);
            put(out, folder + "libunrelated.so.1", new byte[] {1, 2, 3});
        }
        FakeMachine m = new FakeMachine(tmp.resolve("machine")).classPath(jar);
        LoadedLibrary found = NativeLibraries.resolve(NativeLibrary.CUDNN, m.environment());
        assertTrue(found.location().startsWith("bytedeco redist jar"), found.location());
        assertEquals(Cudnn.version(), found.version());
        Path dir = found.path().getParent();
        assertTrue(dir.startsWith(m.root().resolve("cache")), dir.toString());
        assertArrayEquals(companion, Files.readAllBytes(dir.resolve("libcudnn_graph.so.9")));
        assertFalse(Files.exists(dir.resolve("libunrelated.so.1")));

        FileTime before = Files.getLastModifiedTime(found.path());
        Thread.sleep(20);
        LoadedLibrary again = NativeLibraries.resolve(NativeLibrary.CUDNN, m.environment());
        assertEquals(found.path(), again.path());
        assertEquals(before, Files.getLastModifiedTime(again.path()), "extracted a second time");
    }

    @Test
    void unpackedRedistFolderOnTheClassPathIsUsedInPlace() throws Exception {
        Path classes = tmp.resolve("classes");
        Path dir = Files.createDirectories(classes.resolve("org/bytedeco/cuda/linux-x86_64"));
        Files.createSymbolicLink(dir.resolve("libcudnn.so.9"), FakeMachine.unpacked("libcudnn.so.9"));
        Files.createSymbolicLink(dir.resolve("libcudnn_graph.so.9"), FakeMachine.unpacked("libcudnn_graph.so.9"));
        FakeMachine m = new FakeMachine(tmp.resolve("machine")).classPath(classes);
        LoadedLibrary found = NativeLibraries.resolve(NativeLibrary.CUDNN, m.environment());
        assertEquals(dir.resolve("libcudnn.so.9").toAbsolutePath().normalize(), found.path());
    }

    @Test
    void aShimWithoutItsGraphLibraryIsRejectedWithoutBeingOpened() throws Exception {
        // cudnnGetVersion in a lone libcudnn.so.9 would abort the process; the resolver must not call it.
        FakeMachine m = new FakeMachine(tmp);
        m.link("lone/libcudnn.so.9", FakeMachine.unpacked("libcudnn.so.9"));
        m.property("usp4j.cudnn.path", tmp.resolve("lone").toString());
        var e = assertThrows(org.usp4j.nativelib.LibraryNotFoundException.class,
                () -> NativeLibraries.resolve(NativeLibrary.CUDNN, m.environment()));
        assertTrue(e.placesTried().get(0).endsWith("lacks libcudnn_graph.so.9 beside it"), e.getMessage());
    }

    private static void put(JarOutputStream out, String name, byte[] bytes) throws java.io.IOException {
        out.putNextEntry(new JarEntry(name));
        out.write(bytes);
        out.closeEntry();
    }
}
