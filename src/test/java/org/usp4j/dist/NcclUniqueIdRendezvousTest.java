package org.usp4j.dist;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.dist.store.Tokens;

/**
 * The real NCCL library's unique id (128 bytes; made without a GPU) travels from rank 0 to every rank
 * through the rendezvous, unchanged. A direct downcall keeps this test independent of the NCCL wrappers;
 * the communicator's own tests take over once they exist.
 */
@Timeout(60)
class NcclUniqueIdRendezvousTest {

    /** NCCL_UNIQUE_ID_BYTES in nccl.h. */
    private static final int UNIQUE_ID_BYTES = 128;

    private static Path ncclLibrary() {
        String dir = System.getProperty("usp4j.nccl.path");
        boolean required = Boolean.getBoolean("usp4j.test.requireNativeLibraries");
        Path lib = dir == null ? null : Path.of(dir, "libnccl.so.2");
        if (required) {
            assertTrue(lib != null && Files.isRegularFile(lib), "libnccl.so.2 not found in usp4j.nccl.path=" + dir);
        } else {
            assumeTrue(lib != null && Files.isRegularFile(lib), "no NCCL library configured (usp4j.nccl.path)");
        }
        return lib;
    }

    /** ncclGetUniqueId(ncclUniqueId* out): fills 128 bytes, returns ncclSuccess (0). */
    private static byte[] ncclGetUniqueId(Path lib) throws Throwable {
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup nccl = SymbolLookup.libraryLookup(lib, Arena.global());
            MethodHandle get = Linker.nativeLinker().downcallHandle(nccl.find("ncclGetUniqueId").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
            MemorySegment id = arena.allocate(UNIQUE_ID_BYTES);
            int result = (int) get.invokeExact(id);
            assertEquals(0, result, "ncclGetUniqueId returned " + result);
            return id.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    @Test
    void theUniqueIdReachesEveryRankUnchanged() throws Exception {
        Path lib = ncclLibrary();
        int world = 3;
        int port;
        try (ServerSocket s = new ServerSocket(0)) {
            port = s.getLocalPort();
        }
        String token = Tokens.generate();
        byte[][] made = new byte[1][];
        try (ExecutorService pool = Executors.newVirtualThreadPerTaskExecutor()) {
            List<Future<byte[]>> received = new ArrayList<>();
            for (int r = 0; r < world; r++) {
                LaunchEnvironment env = new LaunchEnvironment(r, world, r, world, "127.0.0.1", port, token,
                        Duration.ofSeconds(30), LaunchSource.USP4J);
                received.add(pool.submit(() -> {
                    try (Rendezvous rdzv = Rendezvous.join(env)) {
                        return rdzv.broadcast("nccl/unique-id", () -> {
                            try {
                                made[0] = ncclGetUniqueId(lib);
                                return made[0];
                            } catch (Throwable t) {
                                throw new AssertionError("ncclGetUniqueId failed", t);
                            }
                        });
                    }
                }));
            }
            List<byte[]> ids = new ArrayList<>();
            for (Future<byte[]> f : received) {
                ids.add(f.get());
            }
            assertEquals(UNIQUE_ID_BYTES, made[0].length);
            boolean allZero = true;
            for (byte b : made[0]) {
                allZero &= b == 0;
            }
            assertTrue(!allZero, "NCCL filled the id");
            for (byte[] id : ids) {
                assertArrayEquals(made[0], id);
            }
        }
    }
}
