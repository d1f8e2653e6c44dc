package org.usp4j.gpu;

import java.time.Duration;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.comm.local.LocalTransport;
import org.usp4j.cuda.Cuda;
import org.usp4j.cuda.CudaEvent;
import org.usp4j.cuda.CudaMemory;
import org.usp4j.cuda.CudaStream;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * How one in-process GPU rank moves bytes: device-to-device copies between the ranks' buffers on one
 * GPU, ordered with CUDA events so that nothing blocks the host in the ring's hot path.
 *
 * <ul>
 *   <li>Collectives (the Ulysses all-to-alls, twice per layer) pull from the peers on the rank's own
 *       stream between two host synchronizations, which keeps them simple and safe.</li>
 *   <li>Ring exchanges run on a separate copy stream: it waits for the sender's and the receiver's
 *       "buffers ready" events, copies, and records a done event that both ranks' compute streams
 *       wait on. The transfer overlaps the attention of the current step.</li>
 * </ul>
 */
final class DeviceTransport implements LocalTransport, AutoCloseable {

    /** A copy's done event, waited on by both the receiving and the sending rank, then destroyed. */
    private static final class SharedEvent {
        final CudaEvent event;
        final AtomicInteger holders = new AtomicInteger(2);

        SharedEvent(CudaEvent event) {
            this.event = event;
        }
    }

    private static final Logger LOG = LogManager.getLogger(DeviceTransport.class);
    /** How long {@link #close} waits for receives that copy threads are still enqueuing. */
    static final Duration CLOSE_WAIT = Duration.ofSeconds(60);

    private final CudaBackend backend;
    private final CudaStream copyStream;
    /** Receives inside {@link #receive} now; guarded by this, like {@code closed}. */
    private int receiving;
    private boolean closed;

    DeviceTransport(CudaBackend backend) {
        this.backend = backend;
        this.copyStream = CudaStream.create();
    }

    @Override
    public void requireBuffer(String operation, String name, Tensor t) {
        if (!t.isDevice() || t.devicePointer().device() != backend.device()) {
            throw new IllegalArgumentException(operation + ": " + name + " " + t.describe()
                    + " must be in the memory of device " + backend.device());
        }
        if (!t.isContiguous()) {
            throw new IllegalArgumentException(operation + ": " + name + " " + t.describe() + " must be contiguous");
        }
    }

    @Override
    public void beforeCollective() {
        backend.stream().synchronize(); // the buffers peers will read are written
    }

    @Override
    public void copy(Tensor src, long srcOffset, Tensor dst, long dstOffset, long bytes) {
        CudaMemory.copyDeviceToDeviceAsync(src.contiguousDevicePointer().slice(srcOffset, bytes),
                dst.contiguousDevicePointer().slice(dstOffset, bytes), backend.stream());
    }

    @Override
    public void accumulate(Tensor src, long srcOffset, Tensor dst, long dstOffset, long bytes) {
        long n = bytes / Float.BYTES;
        backend.add(Tensor.device(dst.contiguousDevicePointer().slice(dstOffset, bytes), DType.F32, n),
                Tensor.device(src.contiguousDevicePointer().slice(srcOffset, bytes), DType.F32, n));
    }

    @Override
    public void afterCollective() {
        backend.stream().synchronize(); // done reading the peers' buffers before they move on
    }

    @Override
    public Object ready() {
        CudaEvent event = CudaEvent.create(false);
        event.record(backend.stream());
        return event;
    }

    @Override
    public Object receive(List<Tensor> from, Object senderReady, List<Tensor> into, Object receiverReady) {
        enterReceive();
        try {
            Cuda.setDevice(backend.device()); // copy threads start on device 0
            copyStream.waitFor((CudaEvent) senderReady);
            copyStream.waitFor((CudaEvent) receiverReady);
            for (int i = 0; i < from.size(); i++) {
                CudaMemory.copyDeviceToDeviceAsync(from.get(i).contiguousDevicePointer(),
                        into.get(i).contiguousDevicePointer(), copyStream);
            }
            CudaEvent done = CudaEvent.create(false);
            done.record(copyStream);
            return new SharedEvent(done);
        } finally {
            exitReceive();
        }
    }

    private synchronized void enterReceive() {
        if (closed) {
            throw new IllegalStateException("the device transport of GPU " + backend.device() + " is closed");
        }
        receiving++;
    }

    private synchronized void exitReceive() {
        receiving--;
        notifyAll();
    }

    @Override
    public void awaitCopy(Object copied) {
        if (copied instanceof SharedEvent shared) {
            backend.stream().waitFor(shared.event);
        }
    }

    @Override
    public void release(Object token) {
        if (token instanceof CudaEvent event) {
            event.close(); // a recorded event is freed once it completes
        } else if (token instanceof SharedEvent shared && shared.holders.decrementAndGet() == 0) {
            shared.event.close();
        }
    }

    /**
     * Waits for receives a copy thread is still enqueuing, then for the copy stream, and destroys it. A
     * receive that does not finish within {@link #CLOSE_WAIT} leaves the stream alive (leaked, with a
     * warning): destroying it under a running {@code cudaStreamWaitEvent} would crash the process.
     */
    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        long deadline = System.nanoTime() + CLOSE_WAIT.toNanos();
        while (receiving > 0) {
            long left = deadline - System.nanoTime();
            if (left <= 0) {
                LOG.warn("GPU {}: {} receive(s) still enqueuing after {}; the copy stream is leaked, not destroyed",
                        backend.device(), receiving, CLOSE_WAIT);
                return;
            }
            try {
                wait(Math.max(1, TimeUnit.NANOSECONDS.toMillis(left)));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                LOG.warn("GPU {}: interrupted while closing; the copy stream is leaked, not destroyed", backend.device());
                return;
            }
        }
        copyStream.synchronize();
        copyStream.close();
    }
}
