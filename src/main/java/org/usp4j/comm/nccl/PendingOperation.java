package org.usp4j.comm.nccl;

import org.usp4j.comm.nccl.DeviceStream.DeviceMarker;

/**
 * One NCCL operation from the moment the rank starts calling NCCL for it until its work has run on the
 * device: the watchdog's unit of "did this finish in time". It is complete when the host call returned
 * and the marker recorded after it has completed. The marker is freed when the watchdog and, for a
 * point-to-point exchange, the {@code Transfer} are both done with it.
 */
final class PendingOperation {

    private final String what;
    private final GroupMembers group;
    private final long startNanos;
    /** Guarded by this. */
    private DeviceMarker marker;
    private boolean enqueued;
    private int holders;

    PendingOperation(String what, GroupMembers group, long startNanos, int holders) {
        this.what = what;
        this.group = group;
        this.startNanos = startNanos;
        this.holders = holders;
    }

    String what() {
        return what;
    }

    GroupMembers group() {
        return group;
    }

    long startNanos() {
        return startNanos;
    }

    /** The host call returned; {@code done} (may be null: nothing on a device) marks its device work. */
    synchronized void enqueued(DeviceMarker done) {
        marker = done;
        enqueued = true;
        if (holders == 0 && marker != null) {
            marker.close();
        }
    }

    synchronized boolean isEnqueued() {
        return enqueued;
    }

    /** Never blocks. */
    synchronized boolean isComplete() {
        return enqueued && (marker == null || marker.isComplete());
    }

    /** Makes {@code stream} wait for this operation's device work (the Transfer's await). */
    synchronized void orderAfter(DeviceStream stream) {
        if (marker != null && !marker.isComplete()) {
            stream.waitFor(marker);
        }
    }

    /** One holder is done with the marker; the last one frees it. */
    synchronized void release() {
        if (holders > 0 && --holders == 0 && marker != null) {
            marker.close();
        }
    }

    @Override
    public String toString() {
        return what + " on " + group.describe();
    }
}
