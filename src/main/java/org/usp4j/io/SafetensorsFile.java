package org.usp4j.io;

import java.io.EOFException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * A safetensors file opened for reading: an 8-byte little-endian header length N, N bytes of UTF-8
 * JSON, then the data buffer that the header's offsets point into.
 *
 * <p>{@link #open} reads and checks the header length and the whole header (see
 * {@link SafetensorsHeader#parse}) before it touches the data; only then is the data buffer
 * memory-mapped, read-only, into a shared arena (so in-process ranks on other threads can read it).
 * {@link #tensor} returns host views of that mapping without copying; they are read-only and valid
 * until {@link #close}, after which any access to them throws.
 */
public final class SafetensorsFile implements AutoCloseable {

    /** The largest header accepted, as in the reference implementation: beyond it a length is absurd. */
    public static final long MAX_HEADER_BYTES = 100_000_000L;

    private static final Logger LOG = LogManager.getLogger(SafetensorsFile.class);

    private final Path path;
    private final SafetensorsHeader header;
    private final Map<String, TensorEntry> byName;
    private final Arena arena;
    private final MemorySegment data;

    private SafetensorsFile(Path path, SafetensorsHeader header, Arena arena, MemorySegment data) {
        this.path = path;
        this.header = header;
        this.arena = arena;
        this.data = data;
        this.byName = new LinkedHashMap<>();
        for (TensorEntry e : header.entries()) {
            byName.put(e.name(), e);
        }
    }

    /**
     * Opens and checks {@code path}. Throws {@link SafetensorsFormatException} (naming the file and the
     * problem) for a file that is not valid safetensors, and other {@link IOException}s for files that
     * cannot be read at all.
     */
    public static SafetensorsFile open(Path path) throws IOException {
        try (FileChannel channel = FileChannel.open(path, StandardOpenOption.READ)) {
            long fileSize = channel.size();
            if (fileSize < 8) {
                throw new SafetensorsFormatException(path, "file is " + fileSize
                        + " bytes long, too short for the 8-byte header length");
            }
            ByteBuffer lengthBytes = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, lengthBytes, 0, path);
            long headerLength = lengthBytes.getLong(0); // an unsigned u64: negative means >= 2^63
            if (headerLength < 0 || headerLength > MAX_HEADER_BYTES) {
                throw new SafetensorsFormatException(path, "header length " + Long.toUnsignedString(headerLength)
                        + " is absurd (the limit is " + MAX_HEADER_BYTES + " bytes)");
            }
            if (headerLength > fileSize - 8) {
                throw new SafetensorsFormatException(path, "header length " + headerLength
                        + " runs past the end of the file (" + fileSize + " bytes, so at most " + (fileSize - 8) + ")");
            }
            if (headerLength < 2) {
                throw new SafetensorsFormatException(path, "header length " + headerLength
                        + " is too small for a JSON object");
            }
            ByteBuffer headerBytes = ByteBuffer.allocate((int) headerLength);
            readFully(channel, headerBytes, 8, path);
            long dataOffset = 8 + headerLength;
            long dataLength = fileSize - dataOffset;
            SafetensorsHeader header;
            try {
                header = SafetensorsHeader.parse(headerBytes.array(), dataLength);
            } catch (SafetensorsFormatException e) {
                throw e.in(path);
            }
            Arena arena = Arena.ofShared();
            try {
                MemorySegment data = channel.map(FileChannel.MapMode.READ_ONLY, dataOffset, dataLength, arena);
                LOG.debug("{}: {} tensors, {}-byte header, {}-byte data buffer", path, header.entries().size(),
                        headerLength, dataLength);
                return new SafetensorsFile(path, header, arena, data);
            } catch (IOException | RuntimeException e) {
                arena.close();
                throw e;
            }
        }
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, long position, Path path) throws IOException {
        long at = position;
        while (buffer.hasRemaining()) {
            int n = channel.read(buffer, at);
            if (n < 0) {
                throw new EOFException(path + ": file ended at byte " + at + " while reading its header");
            }
            at += n;
        }
    }

    public Path path() {
        return path;
    }

    /** Tensor names in header order. */
    public List<String> names() {
        return new ArrayList<>(byName.keySet());
    }

    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    /** The header's description of tensor {@code name}, if the file has it. */
    public Optional<TensorEntry> entry(String name) {
        return Optional.ofNullable(byName.get(name));
    }

    public List<TensorEntry> entries() {
        return header.entries();
    }

    /** The {@code __metadata__} map (empty when the file has none). */
    public Map<String, String> metadata() {
        return header.metadata();
    }

    /**
     * A read-only, contiguous host view of tensor {@code name}. Throws IllegalArgumentException when the
     * file has no such tensor or its dtype is not one usp4j computes with (F32, BF16, F16).
     */
    public Tensor tensor(String name) {
        requireOpen();
        TensorEntry e = byName.get(name);
        if (e == null) {
            throw new IllegalArgumentException(path + " has no tensor '" + name + "' (it has " + names() + ")");
        }
        DType dtype = e.dtype().tensorDType().orElseThrow(() -> new IllegalArgumentException(path + ": tensor '"
                + name + "' is " + e.dtype() + "; usp4j reads F32, BF16 and F16"));
        return Tensor.host(data.asSlice(e.dataBegin(), e.byteLength()), dtype, e.shape());
    }

    /**
     * The values of I32 tensor {@code name} (any shape, row-major), for integer inputs such as
     * {@code cu_seqlens}. Throws IllegalArgumentException when the file has no such tensor or it is not I32.
     */
    public int[] int32s(String name) {
        requireOpen();
        TensorEntry e = byName.get(name);
        if (e == null) {
            throw new IllegalArgumentException(path + " has no tensor '" + name + "' (it has " + names() + ")");
        }
        if (e.dtype() != SafetensorsDType.I32) {
            throw new IllegalArgumentException(path + ": tensor '" + name + "' is " + e.dtype() + ", expected I32");
        }
        int[] values = new int[Math.toIntExact(e.numel())];
        MemorySegment.copy(data, ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN), e.dataBegin(),
                values, 0, values.length);
        return values;
    }

    private void requireOpen() {
        if (!arena.scope().isAlive()) {
            throw new IllegalStateException(path + " is closed");
        }
    }

    /** Unmaps the data; views handed out before now throw on access. Idempotent. */
    @Override
    public synchronized void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }
}
