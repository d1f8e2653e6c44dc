package org.usp4j.comm.nccl;

/**
 * A queue of device work as the group communicator sees it: a CUDA stream in production
 * ({@link CudaDeviceStream}), a fake in tests. Work enqueued on one stream runs in order; markers order
 * one stream after another without blocking the host.
 */
interface DeviceStream {

    /** A marker that completes once everything enqueued on this stream so far has run. */
    DeviceMarker mark();

    /** Work enqueued on this stream from now on starts only after {@code marker} has completed. */
    void waitFor(DeviceMarker marker);

    /** A point in a stream's work (a CUDA event); closing it never waits for the work. */
    interface DeviceMarker extends AutoCloseable {

        /** True once the work before the marker has run (or was aborted); never blocks. */
        boolean isComplete();

        /** Frees the marker; idempotent. */
        @Override
        void close();
    }
}
