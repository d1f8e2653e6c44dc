package org.usp4j.gpu;

import java.util.List;
import java.util.concurrent.atomic.AtomicInteger;
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

    private final CudaBackend backend;
    private final CudaStream copyStream;

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
        Cuda.setDevice(backend.device()); // copy threads start on device 0
        copyStream.waitFor((CudaEvent) senderReady);
        copyStream.waitFor((CudaEvent) receiverReady);
        for (int i = 0; i < from.size(); i++) {
            CudaMemory.copyDeviceToDeviceAsync(from.get(i).contiguousDevicePointer(), into.get(i).contiguousDevicePointer(),
                    copyStream);
        }
        CudaEvent done = CudaEvent.create(false);
        done.record(copyStream);
        return new SharedEvent(done);
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

    @Override
    public void close() {
        copyStream.synchronize();
        copyStream.close();
    }
}
