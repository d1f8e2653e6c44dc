package example;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.usp4j.api.AttentionLayer;
import org.usp4j.api.AttentionOptions;
import org.usp4j.api.InProcessWorld;
import org.usp4j.api.Mesh;
import org.usp4j.api.SequenceLayout;
import org.usp4j.api.Usp4j;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * What a framework writes to use usp4j, with nothing but the installed jar: causal attention on a 2 x 2
 * mesh (Ulysses 2 x Ring 2, zigzag) of in-process CPU ranks, forward and backward, on shards the
 * framework deals itself, equal to the same layer on one rank.
 */
class EmbeddingClientTest {

    static final long B = 1, S = 256, H = 4, H_KV = 2, D = 16;

    /** out, dq, dk, dv over the whole sequence, gathered from every rank's shard. */
    record Result(Tensor out, Tensor dq, Tensor dk, Tensor dv) {
    }

    @Test
    void uspOnFourCpuRanksEqualsOneRank() {
        AttentionOptions options = AttentionOptions.defaults().withCausal(true).withLayout(SequenceLayout.ZIGZAG);
        try (Arena arena = Arena.ofShared()) {
            Tensor q = random(arena, H, 1), k = random(arena, H_KV, 2), v = random(arena, H_KV, 3);
            Tensor dout = random(arena, H, 4);
            Result one, four;
            try (InProcessWorld world = Usp4j.cpuWorld(1)) {
                one = step(world, new Mesh(1, 1), options, arena, q, k, v, dout);
            }
            try (InProcessWorld world = Usp4j.cpuWorld(4)) {
                four = step(world, new Mesh(2, 2), options, arena, q, k, v, dout);
            }
            close("out", one.out(), four.out());
            close("dq", one.dq(), four.dq());
            close("dk", one.dk(), four.dk());
            close("dv", one.dv(), four.dv());
        }
    }

    /** Every rank attends over its shard; the results land in the global tensors at the shard's rows. */
    static Result step(InProcessWorld world, Mesh mesh, AttentionOptions options, Arena arena,
                       Tensor q, Tensor k, Tensor v, Tensor dout) {
        Result all = new Result(zeros(arena, H), zeros(arena, H), zeros(arena, H_KV), zeros(arena, H_KV));
        long local = options.layout().localLength(S, mesh);
        world.run(rank -> {
            long[] rows = options.layout().globalPositions(S, mesh, rank.rank());
            try (AttentionLayer layer = rank.newAttention(mesh, options)) {
                Tensor ql = shard(arena, q, rows), kl = shard(arena, k, rows), vl = shard(arena, v, rows);
                Tensor dl = shard(arena, dout, rows);
                Tensor out = Tensor.allocate(arena, DType.F32, B, local, H, D);
                Tensor dq = Tensor.allocate(arena, DType.F32, B, local, H, D);
                Tensor dk = Tensor.allocate(arena, DType.F32, B, local, H_KV, D);
                Tensor dv = Tensor.allocate(arena, DType.F32, B, local, H_KV, D);
                layer.forward(ql, kl, vl, out);
                layer.backward(dl, dq, dk, dv);
                for (var pair : List.of(List.of(out, all.out()), List.of(dq, all.dq()), List.of(dk, all.dk()),
                        List.of(dv, all.dv()))) {
                    unshard(pair.get(0), pair.get(1), rows);
                }
            }
            return null;
        });
        return all;
    }

    static Tensor shard(Arena arena, Tensor global, long[] rows) {
        Tensor local = Tensor.allocate(arena, global.dtype(), B, rows.length, global.size(2), D);
        for (int i = 0; i < rows.length; i++) {
            HostTensors.copy(global.slice(1, rows[i], 1), local.slice(1, i, 1));
        }
        return local;
    }

    static void unshard(Tensor local, Tensor global, long[] rows) {
        for (int i = 0; i < rows.length; i++) {
            HostTensors.copy(local.slice(1, i, 1), global.slice(1, rows[i], 1));
        }
    }

    static Tensor random(Arena arena, long heads, long seed) {
        Tensor t = zeros(arena, heads);
        HostTensors.fillNormal(t, seed);
        return t;
    }

    static Tensor zeros(Arena arena, long heads) {
        return Tensor.allocate(arena, DType.F32, B, S, heads, D);
    }

    static void close(String what, Tensor expected, Tensor actual) {
        double err = HostTensors.relativeError(actual, expected);
        assertTrue(err < 1e-5, what + ": relative error " + err + " against one rank");
    }
}
