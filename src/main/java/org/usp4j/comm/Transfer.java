package org.usp4j.comm;

/**
 * A point-to-point exchange in flight. On the CPU {@link #await} blocks until the data has arrived
 * and the peer has taken what we sent; on a GPU it orders the caller's stream after the transfer,
 * without blocking the host.
 *
 * <p>Every transfer ends in exactly one {@link #await} or {@link #cancel}: a strategy that fails with
 * transfers still in flight must cancel them before it frees (or lets its caller free) the buffers
 * they read and write.
 */
public interface Transfer {

    /** Waits (or orders later work) until every send and receive of this exchange is complete. */
    void await();

    /**
     * The failure path's end of a transfer: withdraws a send the peer has not taken yet, stops a receive
     * that has not started copying, waits (within the communicator's timeout) for a copy that did
     * start, orders the caller's later work (frees included) after it, and releases the transfer's
     * resources. Never throws; a no-op after {@link #await} or an earlier cancel.
     *
     * @return true when no copy of this exchange can touch its buffers any more; false when it gave up
     *         waiting, and the caller must leak the buffers rather than free them
     */
    boolean cancel();
}
