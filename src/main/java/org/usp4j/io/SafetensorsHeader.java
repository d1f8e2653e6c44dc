package org.usp4j.io;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The JSON header of a safetensors file: tensor entries in header order and the optional
 * {@code "__metadata__"} string map. {@link #parse} checks every rule of the format against the length
 * of the data buffer that follows, so that nothing reads tensor bytes before the whole header is known
 * to be sound.
 */
public final class SafetensorsHeader {

    /** The reserved key for free-form string metadata. */
    public static final String METADATA_KEY = "__metadata__";

    private static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private final List<TensorEntry> entries;
    private final Map<String, String> metadata;

    private SafetensorsHeader(List<TensorEntry> entries, Map<String, String> metadata) {
        this.entries = Collections.unmodifiableList(entries);
        this.metadata = Collections.unmodifiableMap(metadata);
    }

    /** Tensor entries in the order the header lists them. */
    public List<TensorEntry> entries() {
        return entries;
    }

    /** The {@code __metadata__} map (empty when absent), in header order. */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * Parses and checks a header whose data buffer is {@code dataLength} bytes long: valid UTF-8, one
     * JSON object, known dtypes, non-negative integer shapes without overflow, offsets that are an
     * ordered pair inside the buffer, byte lengths equal to numel x element size, and no two tensors
     * sharing a byte. Gaps between tensors are allowed.
     */
    public static SafetensorsHeader parse(byte[] headerBytes, long dataLength) throws SafetensorsFormatException {
        String text = decodeUtf8(headerBytes);
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JacksonException e) {
            throw (SafetensorsFormatException) new SafetensorsFormatException(
                    "malformed header JSON: " + oneLine(e.getOriginalMessage())).initCause(e);
        }
        if (root == null || !root.isObject()) {
            throw new SafetensorsFormatException("header must be a JSON object, got "
                    + (root == null ? "nothing" : root.getNodeType().toString().toLowerCase(Locale.ROOT)));
        }
        List<TensorEntry> entries = new ArrayList<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = root.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> field = it.next();
            if (field.getKey().equals(METADATA_KEY)) {
                readMetadata(field.getValue(), metadata);
            } else {
                entries.add(readEntry(field.getKey(), field.getValue(), dataLength));
            }
        }
        checkNoOverlap(entries);
        return new SafetensorsHeader(entries, metadata);
    }

    /**
     * The header bytes for {@code entries} (offsets already assigned) and {@code metadata}, padded with
     * spaces to a multiple of 8 bytes so that the data buffer starts 8-byte aligned, as the reference
     * writer does.
     */
    static byte[] encode(List<TensorEntry> entries, Map<String, String> metadata) {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(METADATA_KEY);
            metadata.forEach(meta::put);
        }
        for (TensorEntry e : entries) {
            ObjectNode node = root.putObject(e.name());
            node.put("dtype", e.dtype().name());
            ArrayNode shape = node.putArray("shape");
            for (long d : e.shape()) {
                shape.add(d);
            }
            node.putArray("data_offsets").add(e.dataBegin()).add(e.dataEnd());
        }
        byte[] json;
        try {
            json = JSON.writeValueAsBytes(root);
        } catch (JacksonException e) {
            throw new IllegalStateException("cannot encode a safetensors header", e);
        }
        int padded = (json.length + 7) / 8 * 8;
        byte[] out = Arrays.copyOf(json, padded);
        Arrays.fill(out, json.length, padded, (byte) ' ');
        return out;
    }

    private static String decodeUtf8(byte[] bytes) throws SafetensorsFormatException {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new SafetensorsFormatException("header is not valid UTF-8");
        }
    }

    private static void readMetadata(JsonNode node, Map<String, String> metadata) throws SafetensorsFormatException {
        if (!node.isObject()) {
            throw new SafetensorsFormatException(METADATA_KEY + " must be an object of strings, got " + kind(node));
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = node.properties().iterator(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (!e.getValue().isTextual()) {
                throw new SafetensorsFormatException(METADATA_KEY + " value of '" + e.getKey()
                        + "' must be a string, got " + kind(e.getValue()));
            }
            metadata.put(e.getKey(), e.getValue().textValue());
        }
    }

    private static TensorEntry readEntry(String name, JsonNode node, long dataLength)
            throws SafetensorsFormatException {
        String where = "tensor '" + name + "'";
        if (!node.isObject()) {
            throw new SafetensorsFormatException(where + " must be an object, got " + kind(node));
        }
        JsonNode dtypeNode = required(node, "dtype", where);
        if (!dtypeNode.isTextual()) {
            throw new SafetensorsFormatException(where + ": dtype must be a string, got " + kind(dtypeNode));
        }
        SafetensorsDType dtype = SafetensorsDType.byName(dtypeNode.textValue()).orElseThrow(() ->
                new SafetensorsFormatException(where + ": unknown dtype '" + dtypeNode.textValue() + "'"));

        JsonNode shapeNode = required(node, "shape", where);
        if (!shapeNode.isArray()) {
            throw new SafetensorsFormatException(where + ": shape must be an array, got " + kind(shapeNode));
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = nonNegativeLong(shapeNode.get(i), where + ": shape entry " + i);
        }

        JsonNode offsetsNode = required(node, "data_offsets", where);
        if (!offsetsNode.isArray() || offsetsNode.size() != 2) {
            throw new SafetensorsFormatException(where + ": data_offsets must be a pair [begin, end], got "
                    + oneLine(offsetsNode.toString()));
        }
        long begin = nonNegativeLong(offsetsNode.get(0), where + ": data_offsets begin");
        long end = nonNegativeLong(offsetsNode.get(1), where + ": data_offsets end");
        if (begin > end) {
            throw new SafetensorsFormatException(where + ": data_offsets begin " + begin + " > end " + end);
        }
        if (end > dataLength) {
            throw new SafetensorsFormatException(where + ": data_offsets end " + end
                    + " is past the end of the " + dataLength + "-byte data buffer");
        }
        long expected;
        try {
            long numel = 1;
            for (long d : shape) {
                numel = Math.multiplyExact(numel, d);
            }
            expected = Math.multiplyExact(numel, (long) dtype.byteSize());
            // strides treat empty dimensions as 1, so [0, 2^62, 2^62] has no elements but overflowing strides
            long extent = dtype.byteSize();
            for (long d : shape) {
                extent = Math.multiplyExact(extent, Math.max(d, 1));
            }
        } catch (ArithmeticException e) {
            throw new SafetensorsFormatException(where + ": shape " + Arrays.toString(shape)
                    + " is too large: its byte size or strides overflow 64 bits");
        }
        if (end - begin != expected) {
            throw new SafetensorsFormatException(where + ": data_offsets [" + begin + ", " + end + "] hold "
                    + (end - begin) + " bytes but " + dtype + Arrays.toString(shape) + " needs " + expected);
        }
        return new TensorEntry(name, dtype, shape, begin, end);
    }

    private static void checkNoOverlap(List<TensorEntry> entries) throws SafetensorsFormatException {
        List<TensorEntry> sorted = new ArrayList<>();
        for (TensorEntry e : entries) {
            if (e.byteLength() > 0) { // an empty tensor owns no byte
                sorted.add(e);
            }
        }
        sorted.sort(Comparator.comparingLong(TensorEntry::dataBegin));
        for (int i = 1; i < sorted.size(); i++) {
            TensorEntry prev = sorted.get(i - 1);
            TensorEntry next = sorted.get(i);
            if (next.dataBegin() < prev.dataEnd()) {
                throw new SafetensorsFormatException("tensors '" + prev.name() + "' [" + prev.dataBegin() + ", "
                        + prev.dataEnd() + ") and '" + next.name() + "' [" + next.dataBegin() + ", "
                        + next.dataEnd() + ") overlap");
            }
        }
    }

    private static JsonNode required(JsonNode node, String field, String where) throws SafetensorsFormatException {
        JsonNode value = node.get(field);
        if (value == null) {
            throw new SafetensorsFormatException(where + " has no '" + field + "'");
        }
        return value;
    }

    private static long nonNegativeLong(JsonNode node, String what) throws SafetensorsFormatException {
        if (!node.isIntegralNumber()) {
            throw new SafetensorsFormatException(what + " must be a non-negative integer, got " + oneLine(node.toString()));
        }
        if (!node.canConvertToLong() || node.longValue() < 0) {
            throw new SafetensorsFormatException(what + " must be a non-negative 64-bit integer, got " + node.asText());
        }
        return node.longValue();
    }

    private static String kind(JsonNode node) {
        return node.getNodeType().toString().toLowerCase(Locale.ROOT) + " " + oneLine(node.toString());
    }

    /** Keeps messages to one short line: a header may hold anything. */
    static String oneLine(String s) {
        if (s == null) {
            return "";
        }
        String flat = s.replaceAll("\\s+", " ").strip();
        return flat.length() > 120 ? flat.substring(0, 117) + "..." : flat;
    }
}
