package org.usp4j.engine;

import java.util.List;
import java.util.Objects;
import java.util.function.IntFunction;
import org.usp4j.backend.Backend;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.Communicator;
import org.usp4j.launch.LaunchedRank;
import org.usp4j.tensor.Tensor;

/**
 * This process as one rank of a launched job (one rank per process, one GPU each, NCCL between them).
 * Results are gathered with an all-gather over the world communicator into a [P, ...] device buffer, so
 * they never pass through the rendezvous store (whose messages are bounded): that costs every rank device
 * memory for one whole result at a time, and those bytes are not counted in the figures. Small payloads
 * (figures) go through the store. The launched rank stays its owner's: closing frees nothing.
 */
public final class ProcessRanks implements Ranks {

    private final LaunchedRank rank;

    public ProcessRanks(LaunchedRank rank) {
        this.rank = Objects.requireNonNull(rank, "rank");
        Communicator world = rank.world();
        if (world.rank() != rank.rendezvous().rank() || world.size() != rank.rendezvous().worldSize()) {
            throw new IllegalArgumentException("the world communicator is rank " + world.rank() + " of " + world.size()
                    + " but the rendezvous is rank " + rank.rendezvous().rank() + " of "
                    + rank.rendezvous().worldSize());
        }
    }

    @Override
    public int size() {
        return rank.world().size();
    }

    @Override
    public int[] hosted() {
        return new int[] {rank.world().rank()};
    }

    @Override
    public Backend backend(int r) {
        requireMine(r);
        return rank.backend();
    }

    @Override
    public Communicator world(int r) {
        requireMine(r);
        return rank.world();
    }

    @Override
    public int device(int r) {
        requireMine(r);
        return rank.device();
    }

    @Override
    public <T> List<T> run(RankTask<T> task) {
        return java.util.Collections.singletonList(task.run(rank.world().rank()));
    }

    @Override
    public void gather(IntFunction<Tensor> piece, Placer place) {
        Communicator world = rank.world();
        Backend backend = rank.backend();
        Tensor mine = piece.apply(world.rank());
        try (TensorAllocator memory = backend.newAllocator()) {
            long[] shape = new long[mine.rank() + 1];
            shape[0] = world.size();
            System.arraycopy(mine.shape(), 0, shape, 1, mine.rank());
            Tensor all = memory.allocate(mine.dtype(), shape);
            // In place: my copy goes into my own slot, then the all-gather fills the others.
            Tensor slot = slot(all, world.rank(), mine.shape());
            backend.copy(mine, slot);
            world.allGather(slot, all);
            if (world.rank() == 0) {
                for (int r = 0; r < world.size(); r++) {
                    place.place(r, slot(all, r, mine.shape()), backend::copy);
                }
            }
            backend.synchronize();
            rank.checkHealthy();
        }
    }

    @Override
    public List<byte[]> gatherBytes(String key, IntFunction<byte[]> payload) {
        byte[] mine = payload.apply(rank.world().rank());
        List<byte[]> all = rank.rendezvous().gatherToRoot(key, mine);
        return rank.world().rank() == 0 ? all : List.of(mine);
    }

    @Override
    public void checkHealthy(int r) {
        requireMine(r);
        rank.checkHealthy();
    }

    @Override
    public void close() {
    }

    private void requireMine(int r) {
        if (r != rank.world().rank()) {
            throw new IllegalArgumentException("rank " + r + " is not this process's rank " + rank.world().rank());
        }
    }

    private static Tensor slot(Tensor all, int r, long[] shape) {
        return all.slice(0, r, 1).view(shape);
    }
}
