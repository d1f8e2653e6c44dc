package org.usp4j.api.internal;

import java.util.Objects;
import org.usp4j.api.BackendKind;
import org.usp4j.tensor.Tensor;

/**
 * Checks that a caller's tensor can be used where a rank computes, before any work: host memory that is
 * still alive and readable by the other ranks' threads, or device memory on the rank's device.
 */
final class CallerTensors {

    /** Never started: a segment this thread may access is shared (or global, automatic), not confined. */
    private static final Thread OTHER_THREAD = new Thread(() -> { });

    private CallerTensors() {
    }

    /** Where a rank's tensors must live. */
    record Placement(BackendKind backend, int device, boolean sharedAcrossThreads) {

        static Placement cpu(boolean sharedAcrossThreads) {
            return new Placement(BackendKind.CPU, -1, sharedAcrossThreads);
        }

        static Placement cuda(int device) {
            return new Placement(BackendKind.CUDA, device, false);
        }
    }

    static void require(String name, Tensor t, Placement where) {
        Objects.requireNonNull(t, name);
        if (where.backend() == BackendKind.CPU) {
            if (!t.isHost()) {
                throw new IllegalArgumentException(name + " " + t.describe()
                        + " is device memory, but this rank computes on the CPU: pass host memory");
            }
            if (!t.segment().scope().isAlive()) {
                throw new IllegalArgumentException(name + " " + t.describe()
                        + " views freed memory: the arena that owned it is closed");
            }
            if (!t.segment().isAccessibleBy(Thread.currentThread())) {
                throw new IllegalArgumentException(name + " " + t.describe()
                        + " is confined to another thread's arena and cannot be read on this rank's thread");
            }
            if (where.sharedAcrossThreads() && !t.segment().isAccessibleBy(OTHER_THREAD)) {
                throw new IllegalArgumentException(name + " " + t.describe() + " lives in a confined arena, but"
                        + " in-process ranks read each other's buffers from their own threads: allocate it with"
                        + " Arena.ofShared(), Arena.ofAuto() or Arena.global()");
            }
        } else {
            if (!t.isDevice()) {
                throw new IllegalArgumentException(name + " " + t.describe()
                        + " is host memory, but this rank computes on CUDA device " + where.device()
                        + ": pass device memory");
            }
            if (t.devicePointer().device() != where.device()) {
                throw new IllegalArgumentException(name + " " + t.describe() + " is on CUDA device "
                        + t.devicePointer().device() + ", but this rank computes on device " + where.device());
            }
        }
    }

    /** Refuses a read-only host segment for a tensor usp4j writes. */
    static void requireWritable(String name, Tensor t) {
        if (t.isHost() && t.segment().isReadOnly()) {
            throw new IllegalArgumentException(name + " " + t.describe() + " is read-only, but usp4j writes its results there");
        }
    }

    /** Refuses the same memory passed twice where one is written (e.g. out == q); strided overlaps are the caller's. */
    static void requireDistinct(String writtenName, Tensor written, String otherName, Tensor other) {
        if (sameStart(written, other)) {
            throw new IllegalArgumentException(writtenName + " and " + otherName
                    + " start at the same memory; " + writtenName + " must be a buffer of its own");
        }
    }

    private static boolean sameStart(Tensor a, Tensor b) {
        long offsetA = a.offset() * a.dtype().byteSize();
        long offsetB = b.offset() * b.dtype().byteSize();
        if (a.isDevice() || b.isDevice()) {
            return a.isDevice() && b.isDevice() && a.devicePointer().device() == b.devicePointer().device()
                    && a.devicePointer().address() + offsetA == b.devicePointer().address() + offsetB;
        }
        // Heap segments (over Java arrays) have addresses relative to their array: compare the arrays too.
        Object heapA = a.segment().heapBase().orElse(null);
        Object heapB = b.segment().heapBase().orElse(null);
        return heapA == heapB && a.segment().address() + offsetA == b.segment().address() + offsetB;
    }
}
