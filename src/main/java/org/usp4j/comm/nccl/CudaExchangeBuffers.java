package org.usp4j.comm.nccl;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.usp4j.cuda.CudaMemory;
import org.usp4j.cuda.DeviceBuffer;
import org.usp4j.cuda.PinnedBuffer;
import org.usp4j.tensor.DevicePointer;

/**
 * {@link ExchangeBuffers} on a CUDA device: pinned host staging (so the copies are truly asynchronous
 * and stay in stream order) and two device buffers, allocated on the calling thread's current device.
 */
final class CudaExchangeBuffers implements ExchangeBuffers {

    private final int capacity;
    private final PinnedBuffer hostSend;
    private final PinnedBuffer hostRecv;
    private final DeviceBuffer send;
    private final DeviceBuffer recv;
    private boolean closed;

    private CudaExchangeBuffers(int capacity, PinnedBuffer hostSend, PinnedBuffer hostRecv, DeviceBuffer send,
                                DeviceBuffer recv) {
        this.capacity = capacity;
        this.hostSend = hostSend;
        this.hostRecv = hostRecv;
        this.send = send;
        this.recv = recv;
    }

    /** Buffers for {@code capacity} ints per rank of a world of {@code worldSize}. */
    static CudaExchangeBuffers allocate(int capacity, int worldSize) {
        long sendBytes = (long) capacity * Integer.BYTES;
        long recvBytes = sendBytes * worldSize;
        PinnedBuffer hs = null;
        PinnedBuffer hr = null;
        DeviceBuffer ds = null;
        try {
            hs = PinnedBuffer.allocate(sendBytes);
            hr = PinnedBuffer.allocate(recvBytes);
            ds = DeviceBuffer.allocate(sendBytes);
            DeviceBuffer dr = DeviceBuffer.allocate(recvBytes);
            return new CudaExchangeBuffers(capacity, hs, hr, ds, dr);
        } catch (RuntimeException | Error e) {
            for (AutoCloseable c : new AutoCloseable[] {ds, hr, hs}) {
                if (c != null) {
                    try {
                        c.close();
                    } catch (Exception suppressed) {
                        e.addSuppressed(suppressed);
                    }
                }
            }
            throw e;
        }
    }

    @Override
    public int capacity() {
        return capacity;
    }

    @Override
    public DevicePointer send() {
        return send.pointer();
    }

    @Override
    public DevicePointer recv() {
        return recv.pointer();
    }

    @Override
    public void upload(int[] values, DeviceStream stream) {
        long bytes = (long) values.length * Integer.BYTES;
        MemorySegment host = hostSend.segment();
        MemorySegment.copy(values, 0, host, ValueLayout.JAVA_INT, 0, values.length);
        CudaMemory.copyToDeviceAsync(host.asSlice(0, bytes), send.pointer().slice(0, bytes),
                CudaDeviceStream.cudaStream(stream));
    }

    @Override
    public void download(int count, DeviceStream stream) {
        long bytes = (long) count * Integer.BYTES;
        CudaMemory.copyToHostAsync(recv.pointer().slice(0, bytes), hostRecv.segment().asSlice(0, bytes),
                CudaDeviceStream.cudaStream(stream));
    }

    @Override
    public int[] downloaded(int count) {
        return hostRecv.segment().asSlice(0, (long) count * Integer.BYTES).toArray(ValueLayout.JAVA_INT);
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        try {
            recv.close();
            send.close();
        } finally {
            hostRecv.close();
            hostSend.close();
        }
    }
}
