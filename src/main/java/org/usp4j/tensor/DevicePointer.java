package org.usp4j.tensor;

/**
 * A span of device memory: an address, a size in bytes and the device ordinal. It is a plain value,
 * never a dereferenceable {@link java.lang.foreign.MemorySegment}, so Java code cannot read or write
 * device memory by mistake. It does not own the memory; whoever allocated it frees it.
 *
 * @param address  the device address of the first byte (as {@code cudaMalloc} or a framework returns it); not 0
 * @param byteSize the size in bytes; at least 0
 * @param device   the CUDA device ordinal; at least 0
 */
public record DevicePointer(long address, long byteSize, int device) {

    /**
     * Checks the span.
     *
     * @throws IllegalArgumentException when the address is 0, or the size or the device is negative
     */
    public DevicePointer {
        if (address == 0) {
            throw new IllegalArgumentException("device address is null");
        }
        if (byteSize < 0) {
            throw new IllegalArgumentException("negative device byte size: " + byteSize);
        }
        if (device < 0) {
            throw new IllegalArgumentException("negative device ordinal: " + device);
        }
    }

    /**
     * The sub-span {@code [offset, offset + length)}, bounds-checked.
     *
     * @param offset the first byte, from this span's start
     * @param length the number of bytes
     * @return the sub-span, on the same device
     * @throws IndexOutOfBoundsException when the sub-span is outside this one
     */
    public DevicePointer slice(long offset, long length) {
        if (offset < 0 || length < 0 || offset > byteSize - length) {
            throw new IndexOutOfBoundsException(
                    "slice [" + offset + ", " + (offset + length) + ") outside device span of " + byteSize + " bytes");
        }
        return new DevicePointer(address + offset, length, device);
    }

    @Override
    public String toString() {
        return "DevicePointer[0x" + Long.toHexString(address) + ", " + byteSize + " bytes, device " + device + "]";
    }
}
