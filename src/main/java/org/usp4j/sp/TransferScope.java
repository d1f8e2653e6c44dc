package org.usp4j.sp;

import java.util.ArrayList;
import java.util.List;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.Transfer;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * One strategy call's scratch memory and the transfers that read and write it. On the normal path every
 * tracked transfer is awaited and {@link #close} just frees the memory. When the call fails with
 * transfers in flight, {@code close} first cancels them, so that no peer's copy can touch memory once it
 * is freed; a transfer that cannot be shown idle leaves the memory allocated (with a warning): a leak is
 * recoverable, a copy into freed device memory is not.
 */
final class TransferScope implements AutoCloseable {

    private static final Logger LOG = LogManager.getLogger(TransferScope.class);

    private final TensorAllocator memory;
    private final List<Transfer> inFlight = new ArrayList<>();
    private boolean closed;

    TransferScope(TensorAllocator memory) {
        this.memory = memory;
    }

    Tensor allocate(DType dtype, long... shape) {
        return memory.allocate(dtype, shape);
    }

    /** The transfer, tracked until it is awaited or cancelled; null stays null. */
    Transfer track(Transfer transfer) {
        if (transfer == null) {
            return null;
        }
        Tracked tracked = new Tracked(transfer);
        inFlight.add(tracked);
        return tracked;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        boolean idle = true;
        for (Transfer t : List.copyOf(inFlight)) {
            idle &= t.cancel();
        }
        if (idle) {
            memory.close();
        } else {
            LOG.warn("a failed strategy call leaves its scratch memory allocated: a transfer that uses it did not"
                    + " settle in time");
        }
    }

    private final class Tracked implements Transfer {
        private final Transfer transfer;

        Tracked(Transfer transfer) {
            this.transfer = transfer;
        }

        @Override
        public void await() {
            transfer.await();
            inFlight.remove(this);
        }

        @Override
        public boolean cancel() {
            boolean idle = transfer.cancel();
            inFlight.remove(this);
            return idle;
        }
    }
}
