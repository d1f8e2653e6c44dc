package org.usp4j.comm;

/**
 * A point-to-point exchange in flight. On the CPU {@link #await} blocks until the data has arrived
 * and the peer has taken what we sent; on a GPU it orders the caller's stream after the transfer,
 * without blocking the host.
 */
public interface Transfer {

    /** Waits (or orders later work) until every send and receive of this exchange is complete. */
    void await();
}
