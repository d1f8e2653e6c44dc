package org.usp4j.sp;

import java.util.ArrayList;
import java.util.List;
import org.usp4j.backend.Backend;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.Transfer;
import org.usp4j.tensor.Tensor;

/**
 * A bundle of tensors passed one hop to the right around a ring at every step (K and V for LightSeq,
 * a query block with what its backward needs for TokenRing), with two sets of receive buffers taking
 * turns: a set is refilled only after the step that computed on it and sent it has awaited its
 * transfer. The caller's own tensors are copied first when they are not contiguous (communicators
 * move contiguous tensors) or not in the bundle's dtypes.
 */
final class BlockRotation {

    private final Communicator ring;
    private final TransferScope scratch;
    private final List<Tensor> own;
    private final List<Tensor>[] buffers;
    private int heldBuffer = -1; // -1: the caller's own tensors
    private List<Tensor> held;

    @SuppressWarnings("unchecked")
    BlockRotation(Communicator ring, Backend backend, TransferScope scratch, List<Tensor> own) {
        this.ring = ring;
        this.scratch = scratch;
        this.own = List.copyOf(own);
        this.buffers = new List[2];
        this.held = this.own;
        if (ring.size() > 1 && !own.stream().allMatch(Tensor::isContiguous)) {
            List<Tensor> copy = buffer(0);
            for (int i = 0; i < own.size(); i++) {
                backend.copy(own.get(i), copy.get(i));
            }
            held = copy;
            heldBuffer = 0;
        }
    }

    /** Tensor {@code i} of the bundle held this step. */
    Tensor held(int i) {
        return held.get(i);
    }

    /** Starts passing the held bundle to the right neighbour and receiving the next one from the left. */
    Transfer passOn() {
        int size = ring.size();
        List<Tensor> into = buffer(heldBuffer == 0 ? 1 : 0);
        return scratch.track(ring.sendRecv(held, (ring.rank() + 1) % size, into, (ring.rank() + size - 1) % size));
    }

    /** Waits for the bundle started by {@link #passOn} (none: null) and holds it from now on. */
    void receive(Transfer transfer) {
        if (transfer == null) {
            return;
        }
        transfer.await();
        heldBuffer = heldBuffer == 0 ? 1 : 0;
        held = buffers[heldBuffer];
    }

    private List<Tensor> buffer(int i) {
        if (buffers[i] == null) {
            List<Tensor> made = new ArrayList<>();
            for (Tensor t : own) {
                made.add(scratch.allocate(t.dtype(), t.shape()));
            }
            buffers[i] = List.copyOf(made);
        }
        return buffers[i];
    }
}
