package org.usp4j.comm.nccl;

import org.usp4j.tensor.DevicePointer;

/**
 * Where a world without a rendezvous store (one over a caller's NCCL communicator) exchanges the few
 * ints of its barrier and split agreement over NCCL itself: a device send buffer of {@link #capacity()}
 * ints, a device receive buffer of capacity x world-size ints, and the copies between them and the host,
 * enqueued in stream order so that nothing blocks the host until the caller waits for a marker.
 * {@link CudaExchangeBuffers} in production; tests use host memory.
 *
 * <p>One exchange at a time: the caller waits for one's work before it uploads the next.
 */
interface ExchangeBuffers extends AutoCloseable {

    /** Ints one rank contributes to one exchange, at most. */
    int capacity();

    /** The device buffer {@link #upload} fills. */
    DevicePointer send();

    /** The device buffer the all-gather fills and {@link #download} reads. */
    DevicePointer recv();

    /** Enqueues on {@code stream} the copy of {@code values} into {@link #send()}. */
    void upload(int[] values, DeviceStream stream);

    /** Enqueues on {@code stream} the copy of the first {@code count} ints of {@link #recv()} to the host. */
    void download(int count, DeviceStream stream);

    /** The ints the last {@link #download} brought; call once its work has run. */
    int[] downloaded(int count);

    /** Frees the buffers; idempotent. */
    @Override
    void close();
}
