package org.usp4j.io;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** Every way a file can break the format is refused at open, with a one-line message naming the value. */
class SafetensorsMalformedTest {

    @TempDir
    Path dir;

    /** A file with an explicit header length. */
    static byte[] file(long headerLength, byte[] header, byte[] data) {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        return b.putLong(headerLength).put(header).put(data).array();
    }

    static byte[] file(String header, byte[] data) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return file(h.length, h, data);
    }

    private static String one(String dtype, String shape, String offsets) {
        return "{\"t\":{\"dtype\":" + dtype + ",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}}";
    }

    static Stream<Arguments> malformed() {
        byte[] d16 = new byte[16];
        return Stream.of(
                Arguments.of("empty file", new byte[0], "0 bytes long, too short"),
                Arguments.of("7 bytes", new byte[7], "7 bytes long, too short"),
                Arguments.of("header length 2^64-1", file(-1L, new byte[0], d16),
                        "header length 18446744073709551615 is absurd"),
                Arguments.of("header length over the cap", file(200_000_000L, new byte[0], d16),
                        "header length 200000000 is absurd"),
                Arguments.of("header length past the end", file(100, "{}".getBytes(StandardCharsets.UTF_8), d16),
                        "header length 100 runs past the end of the file (26 bytes"),
                Arguments.of("header length zero", file(0, new byte[0], d16), "header length 0 is too small"),
                Arguments.of("truncated JSON", file("{\"t\":{\"dtype\":", d16), "malformed header JSON"),
                Arguments.of("trailing garbage", file("{} x", d16), "malformed header JSON"),
                Arguments.of("JSON array", file("[1, 2]", d16), "header must be a JSON object, got array"),
                Arguments.of("invalid UTF-8", file(4, new byte[] {'{', (byte) 0xC3, (byte) 0x28, '}'}, d16),
                        "not valid UTF-8"),
                Arguments.of("duplicate names", file("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                        + "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", d16), "Duplicate field 't'"),
                Arguments.of("entry not an object", file("{\"t\":[1]}", d16), "tensor 't' must be an object, got array"),
                Arguments.of("dtype missing", file("{\"t\":{\"shape\":[1],\"data_offsets\":[0,4]}}", d16),
                        "tensor 't' has no 'dtype'"),
                Arguments.of("dtype not a string", file(one("4", "[1]", "[0,4]"), d16), "dtype must be a string"),
                Arguments.of("unknown dtype", file(one("\"F33\"", "[1]", "[0,4]"), d16), "unknown dtype 'F33'"),
                Arguments.of("dtype case", file(one("\"f32\"", "[1]", "[0,4]"), d16), "unknown dtype 'f32'"),
                Arguments.of("shape not an array", file(one("\"F32\"", "4", "[0,4]"), d16), "shape must be an array"),
                Arguments.of("negative shape", file(one("\"F32\"", "[2,-2]", "[0,16]"), d16),
                        "shape entry 1 must be a non-negative 64-bit integer, got -2"),
                Arguments.of("fractional shape", file(one("\"F32\"", "[2.5]", "[0,10]"), d16),
                        "shape entry 0 must be a non-negative integer, got 2.5"),
                Arguments.of("string shape", file(one("\"F32\"", "[\"2\"]", "[0,8]"), d16),
                        "shape entry 0 must be a non-negative integer, got \"2\""),
                Arguments.of("huge shape entry", file(one("\"F32\"", "[99999999999999999999]", "[0,8]"), d16),
                        "non-negative 64-bit integer, got 99999999999999999999"),
                Arguments.of("numel overflow", file(one("\"F32\"", "[4294967296,4294967296]", "[0,16]"), d16),
                        "is too large: its byte size or strides overflow 64 bits"),
                // no elements, so no bytes, but strides of 2^62 x 8 and 2^62 x 2^62 x 8 elements
                Arguments.of("stride overflow of an empty tensor", file(one("\"F32\"",
                        "[0,4611686018427387904,4611686018427387904,8]", "[0,0]"), d16),
                        "tensor 't': shape [0, 4611686018427387904, 4611686018427387904, 8] is too large"),
                Arguments.of("offsets missing", file("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]}}", d16),
                        "has no 'data_offsets'"),
                Arguments.of("offsets single", file(one("\"F32\"", "[1]", "[4]"), d16),
                        "data_offsets must be a pair [begin, end], got [4]"),
                Arguments.of("offsets triple", file(one("\"F32\"", "[1]", "[0,4,8]"), d16),
                        "data_offsets must be a pair"),
                Arguments.of("offsets object", file(one("\"F32\"", "[1]", "{\"begin\":0}"), d16),
                        "data_offsets must be a pair"),
                Arguments.of("negative offset", file(one("\"F32\"", "[1]", "[-4,0]"), d16),
                        "data_offsets begin must be a non-negative 64-bit integer, got -4"),
                Arguments.of("begin after end", file(one("\"F32\"", "[1]", "[8,4]"), d16),
                        "data_offsets begin 8 > end 4"),
                Arguments.of("end past the data", file(one("\"F32\"", "[5]", "[0,20]"), d16),
                        "data_offsets end 20 is past the end of the 16-byte data buffer"),
                Arguments.of("wrong byte length", file(one("\"F32\"", "[3]", "[0,8]"), d16),
                        "hold 8 bytes but F32[3] needs 12"),
                Arguments.of("overlap", file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        + "\"b\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[6,10]}}", d16),
                        "tensors 'a' [0, 8) and 'b' [6, 10) overlap"),
                Arguments.of("metadata not an object", file("{\"__metadata__\":[\"x\"]}", d16),
                        "__metadata__ must be an object of strings"),
                Arguments.of("metadata value not a string", file("{\"__metadata__\":{\"n\":1}}", d16),
                        "__metadata__ value of 'n' must be a string, got number 1"));
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("malformed")
    void refusesWithOneLineNamingTheProblem(String name, byte[] bytes, String expected) throws IOException {
        Path file = dir.resolve("bad.safetensors");
        Files.write(file, bytes);
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.open(file));
        assertTrue(e.getMessage().contains(expected), "message: " + e.getMessage());
        assertTrue(e.getMessage().startsWith(file + ": "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertEquals(file, e.file());
    }

    @Test
    void refusesATruncatedFileThatWasOnceValid() throws IOException {
        Path good = dir.resolve("good.safetensors");
        byte[] data = new byte[64];
        Files.write(good, file(one("\"F32\"", "[4,4]", "[0,64]"), data));
        try (SafetensorsFile f = SafetensorsFile.open(good)) {
            assertEquals(16, f.tensor("t").numel());
        }
        byte[] bytes = Files.readAllBytes(good);
        Path cut = dir.resolve("cut.safetensors");
        Files.write(cut, Arrays.copyOf(bytes, bytes.length - 1));
        SafetensorsFormatException e = assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.open(cut));
        assertTrue(e.getMessage().contains("data_offsets end 64 is past the end of the 63-byte data buffer"), e.getMessage());
        // cut inside the header: the length now runs past the end
        Files.write(cut, Arrays.copyOf(bytes, 20));
        e = assertThrows(SafetensorsFormatException.class, () -> SafetensorsFile.open(cut));
        assertTrue(e.getMessage().contains("runs past the end of the file (20 bytes"), e.getMessage());
    }

    @Test
    void aMissingFileIsAnIoErrorNotAFormatError() {
        assertThrows(NoSuchFileException.class, () -> SafetensorsFile.open(dir.resolve("absent.safetensors")));
    }

    @Test
    void acceptsWhitespacePaddingGapsAndUnknownExtraFields() throws IOException {
        Path file = dir.resolve("lenient.safetensors");
        String header = "{\"t\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8],\"extra\":true}}      ";
        Files.write(file, file(header, new byte[] {0, 0, 0, 0, 0x00, 0x3C, 0x00, (byte) 0xC0}));
        try (SafetensorsFile f = SafetensorsFile.open(file)) {
            assertEquals(1.0f, f.tensor("t").get(0));
            assertEquals(-2.0f, f.tensor("t").get(1));
        }
    }
}
