package org.usp4j.jmh;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * The in-process communicator (ranks as threads over shared memory) against a plain memory copy, in
 * microseconds per operation; {@link ResultTable} turns them into GB/s per rank:
 * <ul>
 *   <li>{@code allToAll}: every rank exchanges {@code bytes} (it sends (P-1)/P of them to its peers);</li>
 *   <li>{@code ringStep}: every rank sends {@code bytes} to its right neighbour and receives as many from
 *       its left, as one ring attention step does with its K/V block, and waits for both;</li>
 *   <li>{@code rankCopy}: the same P rank threads, started and awaited the same way, each copying its own
 *       {@code bytes} from one buffer to another: the memcpy that an exchange of that size is compared
 *       with;</li>
 *   <li>{@code memoryCopy}: one thread (the benchmark's own) copies {@code bytes}.</li>
 * </ul>
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MICROSECONDS)
public class CommBandwidthBenchmark {

    @State(Scope.Benchmark)
    public static class World {
        @Param({"2", "4"})
        public int ranks;

        @Param({"1048576", "16777216"})
        public int bytes;

        LocalWorld world;
        Arena arena;
        Tensor[] send;
        Tensor[] recv;

        @Setup
        public void setup() {
            world = new LocalWorld(ranks);
            arena = Arena.ofShared();
            send = new Tensor[ranks];
            recv = new Tensor[ranks];
            for (int r = 0; r < ranks; r++) {
                send[r] = Tensor.allocate(arena, DType.F32, bytes / 4);
                recv[r] = Tensor.allocate(arena, DType.F32, bytes / 4);
            }
        }

        @TearDown
        public void tearDown() {
            world.close();
            arena.close();
        }
    }

    @State(Scope.Benchmark)
    public static class Buffers {
        @Param({"1048576", "16777216"})
        public int bytes;

        Arena arena;
        MemorySegment from;
        MemorySegment to;

        @Setup
        public void setup() {
            arena = Arena.ofShared();
            from = arena.allocate(bytes, 64);
            to = arena.allocate(bytes, 64);
        }

        @TearDown
        public void tearDown() {
            arena.close();
        }
    }

    @Benchmark
    public Object allToAll(World w) {
        return w.world.run((rank, comm) -> {
            comm.allToAll(w.send[rank], w.recv[rank]);
            return null;
        });
    }

    @Benchmark
    public Object ringStep(World w) {
        return w.world.run((rank, comm) -> {
            int n = comm.size();
            comm.sendRecv(List.of(w.send[rank]), (rank + 1) % n, List.of(w.recv[rank]), (rank + n - 1) % n).await();
            return null;
        });
    }

    @Benchmark
    public Object rankCopy(World w) {
        return w.world.run((rank, comm) -> {
            MemorySegment.copy(w.send[rank].segment(), 0, w.recv[rank].segment(), 0, w.bytes);
            return null;
        });
    }

    @Benchmark
    public MemorySegment memoryCopy(Buffers b) {
        MemorySegment.copy(b.from, 0, b.to, 0, b.bytes);
        return b.to;
    }
}
