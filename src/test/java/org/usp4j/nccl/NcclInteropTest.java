package org.usp4j.nccl;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.usp4j.bindings.nccl.NcclApi;
import org.usp4j.bindings.nccl.ncclConfig_t;
import org.usp4j.bindings.nccl.ncclUniqueId;
import org.usp4j.cuda.Cuda;
import org.usp4j.nativelib.BoundFunctions;
import org.usp4j.nativelib.LibraryVersion;
import org.usp4j.nativelib.LoadedLibrary;
import org.usp4j.nativelib.NativeFunctionUnavailableException;
import org.usp4j.nativelib.NativeLibraries;
import org.usp4j.nativelib.NativeLibrary;

/** The real libnccl.so.2 (2.23.4 from bytedeco's redist jar in CI), without a GPU. */
class NcclInteropTest {

    @Test
    void loadsTheConfiguredLibraryAndReportsItsVersion() {
        LoadedLibrary loaded = Nccl.library();
        String configured = System.getProperty(NativeLibrary.NCCL.propertyName());
        if (configured != null && !configured.isBlank()) {
            assertTrue(loaded.path().startsWith(Path.of(configured).toAbsolutePath().normalize()), loaded.toString());
            assertTrue(loaded.location().contains(NativeLibrary.NCCL.propertyName()), loaded.location());
        }
        int code = Nccl.versionCode();
        assertEquals(LibraryVersion.of(code / 10000, code % 10000 / 100, code % 100), Nccl.version());
        assertTrue(Nccl.version().isAtLeast(LibraryVersion.of(2, 18, 0)), Nccl.version().toString());
    }

    @Test
    void everyBoundFunctionResolvesOrIsMarkedWithTheVersionThatBringsIt() throws ReflectiveOperationException {
        LibraryVersion loaded = Nccl.version();
        List<String> functions = BoundFunctions.functions(NcclApi.class);
        assertTrue(functions.size() >= 28, functions.toString());
        assertTrue(functions.containsAll(NativeLibrary.NCCL.laterFunctions().keySet()), "optional functions must be bound");
        List<String> missing = new ArrayList<>();
        for (String f : functions) {
            if (Nccl.hasFunction(f)) {
                assertNotEquals(0L, ((MemorySegment) BoundFunctions.address(NcclApi.class, f)).address(), f);
            } else {
                LibraryVersion since = NativeLibrary.NCCL.functionSince(f)
                        .orElseThrow(() -> new AssertionError(f + " is missing but not marked optional"));
                assertTrue(since.compareTo(loaded) > 0, f + " (since " + since + ") is missing from " + loaded);
                missing.add(f);
            }
        }
        // 2.28.3 brought the native all-to-all: the redist 2.23.4 must lack it.
        assertEquals(!loaded.isAtLeast(LibraryVersion.of(2, 28, 3)), missing.contains("ncclAlltoAll"), missing.toString());
    }

    @Test
    void aFunctionNewerThanTheLibraryFailsWhenCalledNamingBothVersions() {
        assumeTrue(!Nccl.version().isAtLeast(LibraryVersion.of(2, 28, 3)), "the loaded NCCL has ncclAlltoAll");
        var e = assertThrows(NativeFunctionUnavailableException.class, () -> Nccl.requireFunction("ncclAlltoAll"));
        assertEquals("ncclAlltoAll", e.function());
        assertTrue(e.getMessage().contains("2.28.3") && e.getMessage().contains(Nccl.version().toString()), e.getMessage());
        Nccl.requireFunction("ncclCommSplit"); // present since 2.18, the minimum
    }

    @Test
    void structSizesAndConfigOffsetsMatchTheDocumentedLayout() {
        assertEquals(NcclApi.NCCL_UNIQUE_ID_BYTES(), ncclUniqueId.layout().byteSize());
        assertEquals(128, NcclUniqueId.BYTES);
        // ncclConfig_t of NCCL 2.30 on LP64 (nccl.h): 96 bytes.
        assertEquals(96, ncclConfig_t.layout().byteSize());
        Map<String, Long> offsets = Map.ofEntries(Map.entry("size", 0L), Map.entry("magic", 8L), Map.entry("version", 12L),
                Map.entry("blocking", 16L), Map.entry("cgaClusterSize", 20L), Map.entry("minCTAs", 24L),
                Map.entry("maxCTAs", 28L), Map.entry("netName", 32L), Map.entry("splitShare", 40L),
                Map.entry("trafficClass", 44L), Map.entry("commName", 48L), Map.entry("collnetEnable", 56L),
                Map.entry("CTAPolicy", 60L), Map.entry("shrinkShare", 64L), Map.entry("nvlsCTAs", 68L),
                Map.entry("nChannelsPerNetPeer", 72L), Map.entry("nvlinkCentricSched", 76L),
                Map.entry("graphUsageMode", 80L), Map.entry("numRmaCtx", 84L), Map.entry("maxP2pPeers", 88L),
                Map.entry("graphStreamOrdering", 92L));
        for (var e : offsets.entrySet()) {
            assertEquals(e.getValue(), ncclConfig_t.layout()
                    .byteOffset(java.lang.foreign.MemoryLayout.PathElement.groupElement(e.getKey())), e.getKey());
        }
    }

    @Test
    void resultCodesMatchTheBindingsAndMapToNcclsOwnStrings() {
        Map<String, Integer> constants = BoundFunctions.intConstants(NcclApi.class);
        Set<String> descriptions = new HashSet<>();
        for (NcclResult r : NcclResult.values()) {
            assertEquals(constants.get(r.cName()), r.code(), r.cName());
            String text = Nccl.errorString(r.code());
            assertFalse(text.isBlank(), r.cName());
            if (r != NcclResult.TIMEOUT) {
                assertTrue(descriptions.add(text), "two codes share '" + text + "'");
                // The words of the C name appear in NCCL's own text (ncclInvalidArgument -> "invalid argument").
                String words = r.cName().substring(4).replaceAll("([a-z])([A-Z])", "$1 $2").toLowerCase();
                switch (r) {
                    case SUCCESS -> assertEquals("no error", text);
                    case REMOTE_ERROR -> assertTrue(text.contains("remote"), text);
                    default -> assertTrue(text.toLowerCase().contains(words), words + " / " + text);
                }
            }
            NcclException e = Nccl.failure(r.code(), "ncclTest", MemorySegment.NULL);
            assertEquals(r.cName(), e.resultName());
            assertTrue(e.description().startsWith(text), e.description());
            // ncclInProgress comes only from a non-blocking communicator, which usp4j does not drive: say so
            assertEquals(r == NcclResult.IN_PROGRESS, e.description().contains("non-blocking"), e.description());
            assertTrue(e.getMessage().contains(r.cName()) && e.getMessage().contains(text), e.getMessage());
        }
        // ncclTimeout (8) exists from 2.30; before, 8 was ncclNumResults and thus unknown to the library.
        String unknown = Nccl.errorString(NcclApi.ncclNumResults());
        assertEquals(unknown, Nccl.errorString(1234));
        assertEquals(Nccl.version().isAtLeast(LibraryVersion.of(2, 30, 0)), !Nccl.errorString(8).equals(unknown));
    }

    @Test
    void uniqueIdsHave128BytesAndDifferBetweenCalls() {
        NcclUniqueId a = Nccl.uniqueId();
        NcclUniqueId b = Nccl.uniqueId();
        assertEquals(128, a.bytes().length);
        assertNotEquals(a, b);
        assertFalse(java.util.Arrays.equals(new byte[128], a.bytes()), "id is all zeros");
        assertEquals(a, NcclUniqueId.fromBytes(a.bytes()));
        assertEquals(a.hashCode(), NcclUniqueId.fromBytes(a.bytes()).hashCode());
        byte[] copy = a.bytes();
        copy[0] ^= 1;
        assertArrayEquals(a.bytes(), NcclUniqueId.fromBytes(a.bytes()).bytes(), "bytes() must return a copy");
        assertThrows(IllegalArgumentException.class, () -> NcclUniqueId.fromBytes(new byte[127]));
        assertThrows(IllegalArgumentException.class, () -> NcclUniqueId.fromBytes(null));
    }

    @Test
    void communicatorInitWithoutAGpuBecomesAnNcclException() {
        assumeTrue(Cuda.driverVersion() == 0, "a CUDA driver is installed");
        NcclUniqueId id = Nccl.uniqueId();
        NcclException plain = assertThrows(NcclException.class, () -> NcclCommunicator.initRank(1, id, 0));
        assertEquals(NcclResult.UNHANDLED_CUDA_ERROR.code(), plain.code());
        assertEquals("ncclCommInitRank", plain.function());
        assertFalse(plain.lastError().isBlank(), "NCCL's last error should say which CUDA call failed");
        // The config struct is accepted: the failure is the same missing driver, not a bad argument.
        NcclConfig config = NcclConfig.defaults().withBlocking(true).withCtas(1, 4).withNetName("Socket")
                .withCommName("usp4j-test");
        NcclException withConfig = assertThrows(NcclException.class, () -> NcclCommunicator.initRank(1, id, 0, config));
        assertEquals(NcclResult.UNHANDLED_CUDA_ERROR.code(), withConfig.code());
        assertEquals("ncclCommInitRankConfig", withConfig.function());
    }

    @Test
    @SuppressWarnings("restricted")
    void configMarshalsLikeTheInitializer() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = NcclConfig.defaults().withCtas(2, 8).withSplitShare(true).withCommName("ring")
                    .toNative(arena);
            assertEquals(96, ncclConfig_t.size(c));
            assertEquals(0xcafebeef, ncclConfig_t.magic(c));
            assertEquals(NcclApi.NCCL_VERSION_CODE(), ncclConfig_t.version(c));
            assertEquals(23007, ncclConfig_t.version(c));
            assertEquals(Integer.MIN_VALUE, ncclConfig_t.blocking(c));
            assertEquals(Integer.MIN_VALUE, ncclConfig_t.cgaClusterSize(c));
            assertEquals(2, ncclConfig_t.minCTAs(c));
            assertEquals(8, ncclConfig_t.maxCTAs(c));
            assertEquals(1, ncclConfig_t.splitShare(c));
            assertEquals(0L, ncclConfig_t.netName(c).address());
            assertEquals("ring", ncclConfig_t.commName(c).reinterpret(5).getString(0));
            for (long off = 56; off < 96; off += 4) {
                assertEquals(Integer.MIN_VALUE, c.get(ValueLayout.JAVA_INT, off), "offset " + off);
            }
        }
    }

    @Test
    void badArgumentsAreRefusedBeforeAnyNativeCall() {
        NcclUniqueId id = NcclUniqueId.fromBytes(new byte[128]);
        assertThrows(IllegalArgumentException.class, () -> NcclCommunicator.initRank(0, id, 0));
        var e = assertThrows(IllegalArgumentException.class, () -> NcclCommunicator.initRank(4, id, 4));
        assertTrue(e.getMessage().contains("4"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> NcclCommunicator.initRank(2, null, 0));
        assertThrows(IllegalArgumentException.class,
                () -> NcclCommunicator.initRank(1, id, 0, NcclConfig.defaults().withBlocking(false)));
        assertThrows(IllegalArgumentException.class, NcclCommunicator::initAll);
        assertThrows(IllegalArgumentException.class, () -> NcclConfig.defaults().withCtas(4, 2));
        var minOnly = assertThrows(IllegalArgumentException.class, () -> new NcclConfig(NcclConfig.UNSET,
                NcclConfig.UNSET, 2, NcclConfig.UNSET, NcclConfig.UNSET, null, null));
        assertTrue(minOnly.getMessage().contains("minCtas 2 needs maxCtas"), minOnly.getMessage());
        assertEquals(8, new NcclConfig(NcclConfig.UNSET, NcclConfig.UNSET, NcclConfig.UNSET, 8, NcclConfig.UNSET, null,
                null).maxCtas(), "a maximum alone is fine: NCCL compares INT_MIN > max");
        assertThrows(IllegalArgumentException.class, () -> NcclConfig.defaults().withCgaClusterSize(9));
    }

    @Test
    void dataTypesAndReductionsMatchTheBindings() {
        Map<String, Integer> constants = BoundFunctions.intConstants(NcclApi.class);
        for (NcclDataType t : NcclDataType.values()) {
            String cName = "nccl" + switch (t) {
                case INT8 -> "Int8"; case UINT8 -> "Uint8"; case INT32 -> "Int32"; case UINT32 -> "Uint32";
                case INT64 -> "Int64"; case UINT64 -> "Uint64"; case FLOAT16 -> "Float16"; case FLOAT32 -> "Float32";
                case FLOAT64 -> "Float64"; case BFLOAT16 -> "Bfloat16"; case FLOAT8_E4M3 -> "Float8e4m3";
                case FLOAT8_E5M2 -> "Float8e5m2";
            };
            assertEquals(constants.get(cName), t.code(), cName);
        }
        for (NcclRedOp op : NcclRedOp.values()) {
            String cName = "nccl" + op.name().charAt(0) + op.name().substring(1).toLowerCase();
            assertEquals(constants.get(cName), op.code(), cName);
        }
        assertEquals(NcclDataType.BFLOAT16, NcclDataType.of(org.usp4j.tensor.DType.BF16));
    }
}
