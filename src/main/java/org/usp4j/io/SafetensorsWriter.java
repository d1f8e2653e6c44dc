package org.usp4j.io;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Writes host tensors (any strides) to a safetensors file. The header lists {@code __metadata__} first,
 * then the tensors in the map's iteration order, and is padded with spaces to a multiple of 8 bytes so
 * the data buffer starts aligned; tensors are packed back to back in the same order, as the reference
 * writer does. The file appears atomically: everything is written to a temporary file in the same
 * directory, forced to disk and moved over the target, so a failed write leaves no partial output.
 */
public final class SafetensorsWriter {

    /** Strided tensors are gathered through a staging buffer of this size. */
    private static final int STAGING_BYTES = 1 << 20;
    /** Contiguous data goes to the channel in slices no larger than this (ByteBuffers are int-sized). */
    private static final long MAX_WRITE_BYTES = 1L << 26;

    private SafetensorsWriter() {
    }

    /** Writes {@code tensors} (in iteration order) without metadata. */
    public static void write(Path file, Map<String, Tensor> tensors) throws IOException {
        write(file, tensors, Map.of());
    }

    /**
     * Writes {@code tensors} in iteration order (use a {@link LinkedHashMap} to choose it) and
     * {@code metadata}. Names must be non-empty and not {@value SafetensorsHeader#METADATA_KEY}; tensors
     * must be in host memory. Everything is checked before the file is created.
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, String> metadata) throws IOException {
        write(file, tensors, Map.of(), metadata);
    }

    /**
     * As {@link #write(Path, Map, Map)}, followed by one-dimensional I32 tensors (such as {@code cu_seqlens})
     * from {@code int32}, in its iteration order.
     */
    public static void write(Path file, Map<String, Tensor> tensors, Map<String, int[]> int32,
                             Map<String, String> metadata) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(tensors, "tensors");
        Objects.requireNonNull(int32, "int32");
        Objects.requireNonNull(metadata, "metadata");
        List<TensorEntry> entries = new ArrayList<>(tensors.size());
        List<Tensor> order = new ArrayList<>(tensors.size());
        long offset = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            String name = Objects.requireNonNull(e.getKey(), "tensor name");
            Tensor t = Objects.requireNonNull(e.getValue(), () -> "tensor '" + name + "'");
            if (name.isEmpty() || name.equals(SafetensorsHeader.METADATA_KEY)) {
                throw new IllegalArgumentException("invalid tensor name '" + name + "'");
            }
            if (!t.isHost()) {
                throw new IllegalArgumentException("tensor '" + name + "' is " + t.describe()
                        + "; copy it to host memory before writing");
            }
            long end = Math.addExact(offset, t.byteSize());
            entries.add(new TensorEntry(name, SafetensorsDType.of(t.dtype()), t.shape(), offset, end));
            order.add(t);
            offset = end;
        }
        List<int[]> intOrder = new ArrayList<>(int32.size());
        for (Map.Entry<String, int[]> e : int32.entrySet()) {
            String name = Objects.requireNonNull(e.getKey(), "tensor name");
            int[] values = Objects.requireNonNull(e.getValue(), () -> "tensor '" + name + "'");
            if (name.isEmpty() || name.equals(SafetensorsHeader.METADATA_KEY) || tensors.containsKey(name)) {
                throw new IllegalArgumentException("invalid or repeated tensor name '" + name + "'");
            }
            long end = Math.addExact(offset, 4L * values.length);
            entries.add(new TensorEntry(name, SafetensorsDType.I32, new long[] {values.length}, offset, end));
            intOrder.add(values);
            offset = end;
        }
        metadata.forEach((k, v) -> {
            Objects.requireNonNull(k, "metadata key");
            Objects.requireNonNull(v, () -> "metadata value of '" + k + "'");
        });
        byte[] header = SafetensorsHeader.encode(entries, metadata);

        AtomicFiles.write(file, channel -> {
            ByteBuffer length = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, header.length);
            AtomicFiles.writeFully(channel, length);
            AtomicFiles.writeFully(channel, ByteBuffer.wrap(header));
            for (Tensor t : order) {
                writeTensor(channel, t);
            }
            for (int[] values : intOrder) {
                ByteBuffer bytes = ByteBuffer.allocate(4 * values.length).order(ByteOrder.LITTLE_ENDIAN);
                bytes.asIntBuffer().put(values);
                AtomicFiles.writeFully(channel, bytes);
            }
        });
    }

    private static void writeTensor(FileChannel channel, Tensor t) throws IOException {
        if (t.numel() == 0) {
            return;
        }
        if (t.isContiguous()) {
            writeSegment(channel, t.contiguousSegment());
            return;
        }
        // Gather the raw bytes (no float round trip, so every bit pattern survives) in row-major order:
        // whole rows when the last dimension is dense, single elements otherwise.
        int rank = t.rank();
        boolean denseRows = t.stride(rank - 1) == 1;
        long rowBytes = (denseRows ? t.size(rank - 1) : 1) * t.dtype().byteSize();
        Tensor starts = denseRows ? t.slice(rank - 1, 0, 1) : t;
        MemorySegment src = t.segment();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(Math.max(STAGING_BYTES, rowBytes));
            long[] filled = {0};
            IOException[] failure = {null};
            HostTensors.forEachOffset(starts, (i, byteOffset) -> {
                if (failure[0] != null) {
                    return;
                }
                if (filled[0] + rowBytes > staging.byteSize()) {
                    failure[0] = flush(channel, staging, filled);
                }
                MemorySegment.copy(src, byteOffset, staging, filled[0], rowBytes);
                filled[0] += rowBytes;
            });
            if (failure[0] == null) {
                failure[0] = flush(channel, staging, filled);
            }
            if (failure[0] != null) {
                throw failure[0];
            }
        }
    }

    private static IOException flush(FileChannel channel, MemorySegment staging, long[] filled) {
        try {
            writeSegment(channel, staging.asSlice(0, filled[0]));
            filled[0] = 0;
            return null;
        } catch (IOException e) {
            return e;
        }
    }

    private static void writeSegment(FileChannel channel, MemorySegment segment) throws IOException {
        for (long at = 0; at < segment.byteSize(); at += MAX_WRITE_BYTES) {
            AtomicFiles.writeFully(channel, segment.asSlice(at, Math.min(MAX_WRITE_BYTES, segment.byteSize() - at)).asByteBuffer());
        }
    }
}
