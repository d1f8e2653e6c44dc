package org.usp4j.io;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * Files laid out by hand from the format description (as another implementation would write them), and
 * our writer's bytes checked against that description.
 */
class SafetensorsInteropTest {

    @TempDir
    Path dir;

    @Test
    void readsAFileBuiltByteByByteFromTheSpec() throws IOException {
        // Data buffer: w F32[2,2] = 1, -2, 0.5, 3 at [0,16); h F16[3] = 1, -0.5, 65504 at [16,22);
        // b BF16[2] = 1, -3 at [22,26). Header keys deliberately not in offset order, with metadata.
        ByteBuffer data = ByteBuffer.allocate(26).order(ByteOrder.LITTLE_ENDIAN);
        data.putInt(0x3F800000).putInt(0xC0000000).putInt(0x3F000000).putInt(0x40400000);
        data.putShort((short) 0x3C00).putShort((short) 0xB800).putShort((short) 0x7BFF);
        data.putShort((short) 0x3F80).putShort((short) 0xC040);
        String header = "{\"b\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [22, 26]},"
                + " \"__metadata__\": {\"format\": \"pt\"},"
                + " \"w\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]},"
                + " \"h\": {\"dtype\": \"F16\", \"shape\": [3], \"data_offsets\": [16, 22]}}";
        byte[] headerBytes = header.getBytes(StandardCharsets.UTF_8);
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        out.writeBytes(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(headerBytes.length).array());
        out.writeBytes(headerBytes);
        out.writeBytes(data.array());
        Path file = dir.resolve("spec.safetensors");
        Files.write(file, out.toByteArray());

        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(List.of("b", "w", "h"), f.names());
            assertEquals(Map.of("format", "pt"), f.metadata());
            Tensor w = f.tensor("w");
            assertEquals(DType.F32, w.dtype());
            assertArrayEquals(new long[] {2, 2}, w.shape());
            assertEquals(1f, w.get(0, 0));
            assertEquals(-2f, w.get(0, 1));
            assertEquals(0.5f, w.get(1, 0));
            assertEquals(3f, w.get(1, 1));
            Tensor h = f.tensor("h");
            assertEquals(DType.F16, h.dtype());
            assertEquals(1f, h.get(0));
            assertEquals(-0.5f, h.get(1));
            assertEquals(65504f, h.get(2));
            Tensor b = f.tensor("b");
            assertEquals(DType.BF16, b.dtype());
            assertEquals(1f, b.get(0));
            assertEquals(-3f, b.get(1));
        }
    }

    @Test
    void writerBytesFollowTheSpec() throws IOException {
        Path file = dir.resolve("ours.safetensors");
        try (Arena arena = Arena.ofConfined()) {
            Tensor x = Tensor.allocate(arena, DType.F32, 3);
            x.set(1f, 0);
            x.set(-2f, 1);
            x.set(0.25f, 2);
            Tensor y = Tensor.allocate(arena, DType.BF16, 1, 2);
            y.set(1f, 0, 0);
            y.set(-3f, 0, 1);
            Map<String, Tensor> tensors = new LinkedHashMap<>();
            tensors.put("x", x);
            tensors.put("y", y);
            SafetensorsWriter.write(file, tensors, Map.of("k", "v"));
        }
        ByteBuffer bytes = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        int n = (int) bytes.getLong(0);
        String json = new String(bytes.array(), 8, n, StandardCharsets.UTF_8);
        assertEquals("{\"__metadata__\":{\"k\":\"v\"},"
                + "\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
                + "\"y\":{\"dtype\":\"BF16\",\"shape\":[1,2],\"data_offsets\":[12,16]}}", json.stripTrailing());
        int data = 8 + n;
        assertEquals(data + 16, bytes.capacity());
        assertEquals(0x3F800000, bytes.getInt(data));
        assertEquals(0xC0000000, bytes.getInt(data + 4));
        assertEquals(0x3E800000, bytes.getInt(data + 8));
        assertEquals((short) 0x3F80, bytes.getShort(data + 12));
        assertEquals((short) 0xC040, bytes.getShort(data + 14));
    }
}
