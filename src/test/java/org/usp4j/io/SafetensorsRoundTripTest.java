package org.usp4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/** Writer then reader: every element's bits, shapes, order and metadata survive. */
class SafetensorsRoundTripTest {

    @TempDir
    Path dir;

    /** The elements' raw bits in row-major order, read independently of the writer's gathering. */
    private static long[] bits(Tensor t) {
        long[] out = new long[Math.toIntExact(t.numel())];
        MemorySegment seg = t.segment();
        HostTensors.forEachOffset(t, (i, off) -> out[(int) i] = switch (t.dtype().byteSize()) {
            case 4 -> seg.get(ValueLayout.JAVA_INT_UNALIGNED, off);
            case 2 -> seg.get(ValueLayout.JAVA_SHORT_UNALIGNED, off);
            default -> throw new AssertionError();
        });
        return out;
    }

    @ParameterizedTest
    @EnumSource(DType.class)
    void roundTripsEachDtypeBitForBit(DType dtype) throws IOException {
        Path file = dir.resolve("t.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            Tensor a = Tensor.allocate(arena, dtype, 2, 3, 4, 5);
            HostTensors.fillNormal(a, 7);
            a.set(Float.NaN, 0, 0, 0, 0);
            a.set(Float.NEGATIVE_INFINITY, 1, 2, 3, 4);
            a.set(-0.0f, 0, 1, 0, 0);
            Tensor b = Tensor.allocate(arena, dtype, 7);
            HostTensors.fillNormal(b, 8);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("a", a);
            tensors.put("b", b);
            SafetensorsWriter.write(file, tensors);

            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                assertEquals(List.of("a", "b"), f.names());
                Tensor ra = f.tensor("a");
                assertEquals(dtype, ra.dtype());
                assertArrayEquals(new long[] {2, 3, 4, 5}, ra.shape());
                assertArrayEquals(bits(a), bits(ra));
                assertArrayEquals(bits(b), bits(f.tensor("b")));
                assertEquals(SafetensorsDType.of(dtype), f.entry("a").orElseThrow().dtype());
                assertTrue(f.metadata().isEmpty());
            }
        }
    }

    @Test
    void writesStridedViewsInRowMajorOrder() throws IOException {
        Path file = dir.resolve("strided.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            Tensor base = Tensor.allocate(arena, DType.BF16, 4, 6, 3, 8);
            HostTensors.fillNormal(base, 3);
            Tensor transposed = base.transpose(1, 2);              // [4, 3, 6, 8], inner rows dense
            Tensor sliced = base.slice(1, 2, 3).slice(3, 1, 5);     // [4, 3, 3, 5], gaps everywhere
            Tensor columns = base.transpose(2, 3);                  // [4, 6, 8, 3], last stride 8
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("transposed", transposed);
            tensors.put("sliced", sliced);
            tensors.put("columns", columns);
            SafetensorsWriter.write(file, tensors);
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
                    Tensor back = f.tensor(e.getKey());
                    assertArrayEquals(e.getValue().shape(), back.shape(), e.getKey());
                    assertTrue(back.isContiguous());
                    assertArrayEquals(bits(e.getValue()), bits(back), e.getKey());
                    // and element by element through the float view, index by index
                    long[] s = back.shape();
                    for (long i = 0; i < s[0]; i++) {
                        for (long j = 0; j < s[1]; j++) {
                            assertEquals(e.getValue().get(i, j, 1, 2), back.get(i, j, 1, 2));
                        }
                    }
                }
            }
        }
    }

    @Test
    void keepsMetadataOrderEmptyAndScalarTensors() throws IOException {
        Path file = dir.resolve("meta.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            Tensor scalar = Tensor.allocate(arena, DType.F32);
            scalar.set(2.5f);
            Tensor empty = Tensor.allocate(arena, DType.F16, 3, 0, 2);
            Tensor z = Tensor.allocate(arena, DType.F32, 1);
            z.set(-1f, 0);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("z", z);
            tensors.put("scalar", scalar);
            tensors.put("empty", empty);
            Map<String, String> meta = new LinkedHashMap<>();
            meta.put("format", "pt");
            meta.put("note", "ünïcode ✓ \"quoted\"");
            SafetensorsWriter.write(file, tensors, meta);
            try (SafetensorsFile f = SafetensorsFile.open(file)) {
                assertEquals(List.of("z", "scalar", "empty"), f.names());
                assertEquals(meta, f.metadata());
                assertEquals(List.copyOf(meta.keySet()), List.copyOf(f.metadata().keySet()));
                assertEquals(2.5f, f.tensor("scalar").get());
                assertEquals(0, f.tensor("scalar").rank());
                assertArrayEquals(new long[] {3, 0, 2}, f.tensor("empty").shape());
                assertEquals(-1f, f.tensor("z").get(0));
            }
        }
    }

    @Test
    void headerIsPaddedSoTheDataStartsEightByteAligned() throws IOException {
        Path file = dir.resolve("aligned.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            for (String name : List.of("q", "kk", "vvv", "dooo", "x12345")) {
                SafetensorsWriter.write(file, Map.of(name, Tensor.allocate(arena, DType.F16, 3)));
                ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
                long n = bytes.getLong(0);
                assertEquals(0, n % 8, "header length " + n);
                assertEquals(8 + n + 6, bytes.capacity());
                String json = new String(bytes.array(), 8, (int) n, java.nio.charset.StandardCharsets.UTF_8);
                assertEquals('{', json.charAt(0));
                assertTrue(json.stripTrailing().endsWith("}"), json);
            }
        }
    }

    @Test
    void failedWriteLeavesTheOldFileAndNoTemporaryFiles() throws IOException {
        Path file = dir.resolve("keep.safetensors");
        Files.write(file, new byte[] {1, 2, 3});
        Arena doomed = Arena.ofShared();
        Tensor dead = Tensor.allocate(doomed, DType.F32, 1000, 10).transpose(0, 1);
        doomed.close();
        try (Arena arena = Arena.ofConfined()) {
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("fine", Tensor.allocate(arena, DType.F32, 100));
            tensors.put("dead", dead);
            assertThrows(IllegalStateException.class, () -> SafetensorsWriter.write(file, tensors));
        }
        assertArrayEquals(new byte[] {1, 2, 3}, Files.readAllBytes(file));
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of(file), files.toList());
        }
    }

    @Test
    void refusesBadArgumentsBeforeCreatingAFile() {
        Path file = dir.resolve("never.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            Tensor host = Tensor.allocate(arena, DType.F32, 2);
            Tensor device = Tensor.device(new DevicePointer(0x1000, 64, 0), DType.F32, 2);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> SafetensorsWriter.write(file, Map.of("d", device)));
            assertTrue(e.getMessage().contains("'d'"), e.getMessage());
            assertThrows(IllegalArgumentException.class,
                    () -> SafetensorsWriter.write(file, Map.of("__metadata__", host)));
            assertThrows(IllegalArgumentException.class, () -> SafetensorsWriter.write(file, Map.of("", host)));
            assertThrows(IOException.class,
                    () -> SafetensorsWriter.write(dir.resolve("no/such/dir/x.safetensors"), Map.of("h", host)));
            assertThrows(IOException.class, () -> SafetensorsWriter.write(dir, Map.of("h", host)));
        }
        assertTrue(Files.notExists(file));
    }

    @Test
    void viewsAreReadOnlyAndDieWithTheFile() throws IOException {
        Path file = dir.resolve("ro.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            SafetensorsWriter.write(file, Map.of("x", Tensor.allocate(arena, DType.F32, 4)));
        }
        SafetensorsFile f = SafetensorsFile.open(file);
        Tensor view = f.tensor("x");
        // the FFM API refuses writes to a read-only mapping with IllegalArgumentException
        assertThrows(IllegalArgumentException.class, () -> view.set(1f, 0));
        f.close();
        f.close(); // idempotent
        assertThrows(IllegalStateException.class, () -> view.get(0));
        assertThrows(IllegalStateException.class, () -> f.tensor("x"));
    }

    @Test
    void namesMissingTensorsAndDtypesItCannotCompute() throws IOException {
        Path file = dir.resolve("i64.safetensors");
        ByteBuffer data = ByteBuffer.allocate(16).order(ByteOrder.LITTLE_ENDIAN).putLong(5).putLong(-6);
        Files.write(file, SafetensorsMalformedTest.file(
                "{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", data.array()));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(SafetensorsDType.I64, f.entry("ids").orElseThrow().dtype());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> f.tensor("ids"));
            assertTrue(e.getMessage().contains("I64"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class, () -> f.tensor("q"));
            assertTrue(e.getMessage().contains("no tensor 'q'") && e.getMessage().contains("[ids]"), e.getMessage());
        }
    }
}
