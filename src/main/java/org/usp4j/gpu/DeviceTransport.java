package org.usp4j.gpu;

import java.time.Duration;
import java.util.ArrayDeque;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.comm.local.LocalTransport;
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

    /** A "buffers ready" event of one rank's stream, recycled by the transport that recorded it. */
    private record ReadyEvent(DeviceCalls.Event event, DeviceTransport owner) {
    }

    /** A copy's done event, waited on by both the receiving and the sending rank, then recycled. */
    private static final class SharedEvent {
        final DeviceCalls.Event event;
        final DeviceTransport owner;
        final AtomicInteger holders = new AtomicInteger(2);

        SharedEvent(DeviceCalls.Event event, DeviceTransport owner) {
            this.event = event;
            this.owner = owner;
        }
    }

    /** The device each copy thread made current last (copy threads run only this class's work). */
    private static final ThreadLocal<Integer> COPY_THREAD_DEVICE = new ThreadLocal<>();

    private static final Logger LOG = LogManager.getLogger(DeviceTransport.class);
    /** How long {@link #close} waits for receives that copy threads are still enqueuing. */
    static final Duration CLOSE_WAIT = Duration.ofSeconds(60);

    private final CudaBackend backend;
    private final DeviceCalls calls;
    private final CudaStream copyStream;
    /** Receives inside {@link #receive} now; guarded by this, like {@code closed}. */
    private int receiving;
    /**
     * Events no one waits on any more, for the next token: re-recording one is safe because every wait on
     * it was enqueued before its release, and a wait applies to the record current when it was enqueued.
     */
    private final ArrayDeque<DeviceCalls.Event> spareEvents = new ArrayDeque<>();
    private boolean closed;

    DeviceTransport(CudaBackend backend, DeviceCalls calls) {
        this.backend = backend;
        this.calls = calls;
        // A stream belongs to the device current when it is made: select the rank's (as creating the backend
        // does), or a world on GPU 1 built from a thread on GPU 0 would copy on a stream of device 0.
        calls.setDevice(backend.device());
        this.copyStream = calls.createStream();
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
        calls.synchronize(backend.stream()); // the buffers peers will read are written
    }

    @Override
    public void copy(Tensor src, long srcOffset, Tensor dst, long dstOffset, long bytes) {
        calls.copy(src.contiguousDevicePointer().slice(srcOffset, bytes),
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
        calls.synchronize(backend.stream()); // done reading the peers' buffers before they move on
    }

    @Override
    public Object ready() {
        DeviceCalls.Event event = takeEvent();
        calls.record(event, backend.stream());
        return new ReadyEvent(event, this);
    }

    @Override
    public Object receive(List<Tensor> from, Object senderReady, List<Tensor> into, Object receiverReady) {
        enterReceive();
        try {
            Integer current = COPY_THREAD_DEVICE.get();
            if (current == null || current != backend.device()) {
                calls.setDevice(backend.device()); // copy threads start on device 0
                COPY_THREAD_DEVICE.set(backend.device());
            }
            calls.waitFor(copyStream, ((ReadyEvent) senderReady).event);
            calls.waitFor(copyStream, ((ReadyEvent) receiverReady).event);
            for (int i = 0; i < from.size(); i++) {
                calls.copy(from.get(i).contiguousDevicePointer(), into.get(i).contiguousDevicePointer(), copyStream);
            }
            DeviceCalls.Event done = takeEvent();
            calls.record(done, copyStream);
            return new SharedEvent(done, this);
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
            calls.waitFor(backend.stream(), shared.event);
        }
    }

    @Override
    public void release(Object token) {
        if (token instanceof ReadyEvent ready) {
            ready.owner.recycle(ready.event);
        } else if (token instanceof SharedEvent shared && shared.holders.decrementAndGet() == 0) {
            shared.owner.recycle(shared.event);
        }
    }

    private synchronized DeviceCalls.Event takeEvent() {
        DeviceCalls.Event spare = spareEvents.poll();
        return spare != null ? spare : calls.createEvent();
    }

    private synchronized void recycle(DeviceCalls.Event event) {
        if (closed) {
            calls.destroy(event); // a recorded event is freed once it completes
        } else {
            spareEvents.push(event);
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
        while (!spareEvents.isEmpty()) {
            calls.destroy(spareEvents.pop());
        }
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
        calls.synchronize(copyStream);
        calls.destroyStream(copyStream);
    }
}
