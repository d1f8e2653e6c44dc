package org.usp4j.nccl;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.HexFormat;

/**
 * An {@code ncclUniqueId}: 128 opaque bytes from {@link Nccl#uniqueId()} on one rank, shared with
 * every other rank (e.g. through a rendezvous store) before they create a communicator. The
 * process that created it runs NCCL's bootstrap listener and must stay alive during init.
 */
public final class NcclUniqueId {

    /** {@code NCCL_UNIQUE_ID_BYTES}. */
    public static final int BYTES = 128;

    private final byte[] bytes;

    private NcclUniqueId(byte[] bytes) {
        this.bytes = bytes;
    }

    /** An id from its 128 bytes, e.g. as received from the rank that created it. */
    public static NcclUniqueId fromBytes(byte[] bytes) {
        if (bytes == null || bytes.length != BYTES) {
            throw new IllegalArgumentException("an NCCL unique id has " + BYTES + " bytes, got "
                    + (bytes == null ? "null" : bytes.length));
        }
        return new NcclUniqueId(bytes.clone());
    }

    static NcclUniqueId fromSegment(MemorySegment segment) {
        return new NcclUniqueId(segment.asSlice(0, BYTES).toArray(ValueLayout.JAVA_BYTE));
    }

    /** A copy of the 128 bytes. */
    public byte[] bytes() {
        return bytes.clone();
    }

    void writeTo(MemorySegment segment) {
        MemorySegment.copy(bytes, 0, segment, ValueLayout.JAVA_BYTE, 0, BYTES);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof NcclUniqueId other && Arrays.equals(bytes, other.bytes);
    }

    @Override
    public int hashCode() {
        return Arrays.hashCode(bytes);
    }

    /** The first bytes in hex (the bootstrap magic and address), enough to tell ids apart in logs. */
    @Override
    public String toString() {
        return "NcclUniqueId[" + HexFormat.of().formatHex(bytes, 0, 16) + "...]";
    }
}
