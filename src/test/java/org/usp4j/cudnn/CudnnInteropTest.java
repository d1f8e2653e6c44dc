package org.usp4j.cudnn;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;
import static org.usp4j.cudnn.BackendAttribute.*;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.Function;
import org.junit.jupiter.api.Test;
import org.usp4j.gpu.CudnnGraph;
import org.usp4j.gpu.sdpa.SdpaGraphs;
import org.usp4j.bindings.cudnn.CudnnApi;
import org.usp4j.cuda.Cuda;
import org.usp4j.nativelib.BoundFunctions;
import org.usp4j.nativelib.LibraryVersion;
import org.usp4j.nativelib.LoadedLibrary;
import org.usp4j.nativelib.NativeLibraries;
import org.usp4j.nativelib.NativeLibrary;

/** The real libcudnn.so.9 (9.5.1 from bytedeco's redist jar in CI), without a GPU. */
class CudnnInteropTest {

    @Test
    void loadsTheConfiguredLibraryAndReportsItsVersion() {
        LoadedLibrary loaded = Cudnn.library();
        String configured = System.getProperty(NativeLibrary.CUDNN.propertyName());
        if (configured != null && !configured.isBlank()) {
            assertTrue(loaded.path().startsWith(Path.of(configured).toAbsolutePath().normalize()), loaded.toString());
        }
        long code = Cudnn.versionCode();
        assertEquals(LibraryVersion.of((int) (code / 10000), (int) (code % 10000 / 100), (int) (code % 100)), Cudnn.version());
        assertEquals(9, Cudnn.version().major());
        assertTrue(Cudnn.cudartVersion() >= 11000, "cudart version " + Cudnn.cudartVersion());
    }

    @Test
    void everyBoundFunctionResolves() throws ReflectiveOperationException {
        Cudnn.library();
        List<String> functions = BoundFunctions.functions(CudnnApi.class);
        assertEquals(15, functions.size(), functions.toString());
        for (String f : functions) {
            assertTrue(NativeLibrary.CUDNN.functionSince(f).isEmpty(), f);
            assertTrue(NativeLibraries.hasFunction(NativeLibrary.CUDNN, f), f + " is not exported");
            assertNotEquals(0L, ((MemorySegment) BoundFunctions.address(CudnnApi.class, f)).address(), f);
        }
    }

    @Test
    void everyStatusCodeMapsToCudnnsOwnName() {
        for (CudnnStatus s : CudnnStatus.values()) {
            assertEquals(s.cName(), Cudnn.errorString(s.code()), "code " + s.code());
            CudnnException e = new CudnnException("f", s.code(), Cudnn.errorString(s.code()), "");
            assertEquals(s, e.status().orElseThrow());
        }
        assertEquals("CUDNN_UNKNOWN_STATUS", Cudnn.errorString(6000));
    }

    @Test
    void javaEnumsMatchTheBindingsAndCoverEveryBoundConstant() {
        Map<String, Integer> constants = new TreeMap<>(BoundFunctions.intConstants(CudnnApi.class));
        List<Map<String, Integer>> enums = List.of(
                codes(CudnnStatus.values(), CudnnStatus::cName, CudnnStatus::code),
                codes(DataType.values(), DataType::cName, DataType::code),
                codes(PointwiseMode.values(), PointwiseMode::cName, PointwiseMode::code),
                codes(ReductionOperator.values(), ReductionOperator::cName, ReductionOperator::code),
                codes(HeuristicMode.values(), HeuristicMode::cName, HeuristicMode::code),
                codes(NumericalNote.values(), NumericalNote::cName, NumericalNote::code),
                codes(BehaviorNote.values(), BehaviorNote::cName, BehaviorNote::code),
                codes(AttributeType.values(), AttributeType::cName, AttributeType::code),
                codes(DescriptorType.values(), DescriptorType::cName, DescriptorType::code),
                codes(BackendAttribute.values(), BackendAttribute::cName, BackendAttribute::code));
        int covered = 0;
        for (Map<String, Integer> e : enums) {
            for (var entry : e.entrySet()) {
                assertEquals(constants.remove(entry.getKey()), entry.getValue(), entry.getKey());
                covered++;
            }
        }
        assertTrue(constants.isEmpty(), "constants without a Java enum value: " + constants.keySet());
        assertTrue(covered > 300, "covered " + covered);
    }

    @Test
    void handleCreationWithoutAGpuCarriesNotInitialized() {
        assumeTrue(Cuda.driverVersion() == 0, "a CUDA driver is installed");
        CudnnException e = assertThrows(CudnnException.class, CudnnHandle::create);
        assertEquals(1001, e.code());
        assertEquals(CudnnStatus.NOT_INITIALIZED, e.status().orElseThrow());
        assertEquals("CUDNN_STATUS_NOT_INITIALIZED", e.statusName());
        assertEquals("cudnnCreate", e.function());
        assertFalse(e.lastError().isBlank(), "cuDNN's last error names the failed check");
        assertTrue(e.getMessage().contains("CUDNN_STATUS_NOT_INITIALIZED"), e.getMessage());
    }

    @Test
    void tensorDescriptorBuildsFinalizesAndRoundTripsItsAttributes() {
        try (var t = BackendDescriptor.create(DescriptorType.TENSOR)
                .set(TENSOR_DATA_TYPE, DataType.BFLOAT16)
                .setInt64s(TENSOR_DIMENSIONS, 2, 8, 512, 64)
                .setInt64s(TENSOR_STRIDES, 512L * 8 * 64, 64, 8 * 64, 1)
                .setInt64(TENSOR_UNIQUE_ID, 42)
                .setInt64(TENSOR_BYTE_ALIGNMENT, 16)
                .setBoolean(TENSOR_IS_VIRTUAL, true)
                .finish()) {
            assertTrue(t.isFinalized());
            assertEquals(4, t.elementCount(TENSOR_DIMENSIONS, AttributeType.INT64));
            assertArrayEquals(new long[] {2, 8, 512, 64}, t.getInt64s(TENSOR_DIMENSIONS, 8));
            assertArrayEquals(new long[] {512L * 8 * 64, 64, 8 * 64, 1}, t.getInt64s(TENSOR_STRIDES, 4));
            assertArrayEquals(new long[] {2, 8}, t.getInt64s(TENSOR_DIMENSIONS, 2));
            assertEquals(42, t.getInt64(TENSOR_UNIQUE_ID));
            assertEquals(DataType.BFLOAT16, t.getDataType(TENSOR_DATA_TYPE));
            assertTrue(t.getBoolean(TENSOR_IS_VIRTUAL));
            assertFalse(t.getBoolean(TENSOR_IS_BY_VALUE));
        }
    }

    @Test
    void operationDescriptorsFinalizeAndRoundTripTheirSettings() {
        // cuDNN 9.5 cannot read attributes of POINTWISE descriptors back (NOT_SUPPORTED), so those are
        // checked by finalizing; matmul and reduction descriptors round-trip.
        try (var pw = BackendDescriptor.create(DescriptorType.POINTWISE).set(POINTWISE_MODE, PointwiseMode.GEN_INDEX)
                .set(POINTWISE_MATH_PREC, DataType.FLOAT).setInt64(POINTWISE_AXIS, 3).finish();
             var mm = BackendDescriptor.create(DescriptorType.MATMUL).set(MATMUL_COMP_TYPE, DataType.FLOAT).finish();
             var red = BackendDescriptor.create(DescriptorType.REDUCTION).set(REDUCTION_OPERATOR, ReductionOperator.MAX)
                     .set(REDUCTION_COMP_TYPE, DataType.FLOAT).finish()) {
            assertTrue(pw.isFinalized());
            assertEquals(DataType.FLOAT, mm.getDataType(MATMUL_COMP_TYPE));
            assertEquals(ReductionOperator.MAX, red.getReductionOperator(REDUCTION_OPERATOR));
            assertEquals(DataType.FLOAT, red.getDataType(REDUCTION_COMP_TYPE));
        }
        SdpaGraphs.Shape shape = new SdpaGraphs.Shape(1, 1, 1, 64, 64, 64);
        try (var g = CudnnGraph.build(SdpaGraphs.forward(shape, DataType.HALF, false,
                     SdpaGraphs.contiguousStrides(shape, 4), Cudnn.versionCode()), null);
             var engine = BackendDescriptor.create(DescriptorType.ENGINE).set(ENGINE_OPERATION_GRAPH, g.operationGraph())
                     .setInt64(ENGINE_GLOBAL_INDEX, 0).finish();
             var graphBack = engine.getDescriptor(ENGINE_OPERATION_GRAPH, DescriptorType.OPERATIONGRAPH)) {
            assertEquals(0, engine.getInt64(ENGINE_GLOBAL_INDEX));
            for (int note : engine.getEnums(ENGINE_NUMERICAL_NOTE, AttributeType.NUMERICAL_NOTE, 16)) {
                assertTrue(java.util.Arrays.stream(NumericalNote.values()).anyMatch(n -> n.code() == note), "note " + note);
            }
            assertEquals(g.operationGraph().getInt64(OPERATIONGRAPH_ENGINE_GLOBAL_COUNT),
                    graphBack.getInt64(OPERATIONGRAPH_ENGINE_GLOBAL_COUNT));
        }
    }

    @Test
    void descriptorTypesOfTheLoadedVersionCanBeCreatedAndNewerOnesAreRefused() {
        List<DescriptorType> sdpaGraphTypes = List.of(DescriptorType.TENSOR, DescriptorType.POINTWISE,
                DescriptorType.OPERATION_POINTWISE, DescriptorType.MATMUL, DescriptorType.OPERATION_MATMUL,
                DescriptorType.REDUCTION, DescriptorType.OPERATION_REDUCTION, DescriptorType.OPERATION_RESHAPE,
                DescriptorType.OPERATIONGRAPH, DescriptorType.ENGINE, DescriptorType.ENGINECFG, DescriptorType.ENGINEHEUR,
                DescriptorType.KNOB_CHOICE, DescriptorType.EXECUTION_PLAN, DescriptorType.VARIANT_PACK);
        List<DescriptorType> refused = new ArrayList<>();
        List<DescriptorType> notCreatable = new ArrayList<>();
        for (DescriptorType type : DescriptorType.values()) {
            if (Cudnn.isAtLeast(type.since())) {
                try (var d = BackendDescriptor.create(type)) {
                    assertEquals(type, d.type());
                } catch (CudnnException e) {
                    notCreatable.add(type); // e.g. INTERMEDIATE_INFO on 9.5.1 (4003): an error, never a crash
                }
            } else {
                var e = assertThrows(UnsupportedOperationException.class, () -> BackendDescriptor.create(type));
                assertTrue(e.getMessage().contains(type.since().toString())
                        && e.getMessage().contains(Cudnn.version().toString()), e.getMessage());
                refused.add(type);
            }
        }
        assertTrue(java.util.Collections.disjoint(sdpaGraphTypes, notCreatable), "not creatable: " + notCreatable);
        // The dedicated SDPA operations arrived in 9.13 (forward) and 9.17 (backward).
        assertEquals(!Cudnn.isAtLeast(LibraryVersion.of(9, 13, 0)), refused.contains(DescriptorType.OPERATION_SDPA_FWD));
        assertEquals(!Cudnn.isAtLeast(LibraryVersion.of(9, 17, 0)), refused.contains(DescriptorType.OPERATION_SDPA_BWD));
    }

    @Test
    void misuseOfTheBackendApiBecomesACudnnExceptionWithItsStatus() {
        try (var t = BackendDescriptor.create(DescriptorType.TENSOR)) {
            CudnnException wrongType = assertThrows(CudnnException.class,
                    () -> t.setFloat(TENSOR_DIMENSIONS, 1f));
            assertEquals(CudnnStatus.BAD_PARAM_ATTRIBUTE_TYPE, wrongType.status().orElseThrow());
            assertTrue(wrongType.getMessage().contains("TENSOR_DIMENSIONS"), wrongType.getMessage());
            CudnnException incomplete = assertThrows(CudnnException.class, t::finish);
            assertEquals(2000, incomplete.code() / 1000 * 1000, "a BAD_PARAM kind: " + incomplete.statusName());
            assertFalse(t.isFinalized());
        }
        try (var t = BackendDescriptor.create(DescriptorType.TENSOR).set(TENSOR_DATA_TYPE, DataType.FLOAT)
                .setInt64s(TENSOR_DIMENSIONS, 1, 2).setInt64s(TENSOR_STRIDES, 2, 1).setInt64(TENSOR_UNIQUE_ID, 1)
                .setInt64(TENSOR_BYTE_ALIGNMENT, 4)) {
            // cuDNN reads attributes of finalized descriptors only
            assertEquals(CudnnStatus.NOT_INITIALIZED, assertThrows(CudnnException.class,
                    () -> t.getInt64s(TENSOR_DIMENSIONS, 2)).status().orElseThrow());
            t.finish();
            CudnnException readAsWrongType = assertThrows(CudnnException.class, () -> t.getDataType(TENSOR_DIMENSIONS));
            assertEquals(CudnnStatus.BAD_PARAM_ATTRIBUTE_TYPE, readAsWrongType.status().orElseThrow());
        }
        assumeTrue(!Cudnn.isAtLeast(LibraryVersion.of(9, 13, 0)));
        try (var pw = BackendDescriptor.create(DescriptorType.OPERATION_POINTWISE)) {
            var e = assertThrows(UnsupportedOperationException.class, () -> pw.setInt64(OPERATION_SDPA_FWD_QDESC, 1));
            assertTrue(e.getMessage().contains("OPERATION_SDPA_FWD_QDESC"), e.getMessage());
        }
    }

    @Test
    void useAfterCloseThrowsAndDoubleCloseIsHarmless() {
        var t = BackendDescriptor.create(DescriptorType.MATMUL).set(MATMUL_COMP_TYPE, DataType.FLOAT).finish();
        var e = assertThrows(IllegalStateException.class, () -> t.set(MATMUL_COMP_TYPE, DataType.HALF));
        assertTrue(e.getMessage().contains("finalized"), e.getMessage());
        t.close();
        t.close();
        assertTrue(t.isClosed());
        assertThrows(IllegalStateException.class, t::handle);
        assertThrows(IllegalStateException.class, () -> t.getDataType(MATMUL_COMP_TYPE));
        assertThrows(IllegalStateException.class, t::finish);
        try (var op = BackendDescriptor.create(DescriptorType.OPERATION_MATMUL)) {
            assertThrows(IllegalStateException.class, () -> op.set(OPERATION_MATMUL_DESC, t));
        }
        try (var tensor = BackendDescriptor.create(DescriptorType.TENSOR)) {
            assertThrows(IllegalArgumentException.class,
                    () -> tensor.getDescriptors(TENSOR_RAGGED_OFFSET_DESC, DescriptorType.TENSOR, 0));
            CudnnException empty = assertThrows(CudnnException.class, () -> tensor.setInt64s(TENSOR_DIMENSIONS));
            assertEquals(CudnnStatus.BAD_PARAM, empty.status().orElseThrow());
        }
    }

    private static <E> Map<String, Integer> codes(E[] values, Function<E, String> name, java.util.function.ToIntFunction<E> code) {
        Map<String, Integer> m = new TreeMap<>();
        for (E v : values) {
            m.put(name.apply(v), code.applyAsInt(v));
        }
        return m;
    }
}
