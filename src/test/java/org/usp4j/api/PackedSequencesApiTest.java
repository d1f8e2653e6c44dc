package org.usp4j.api;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.kernel.PackedReference;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The public layer over packed sequences: every rank deals its shard with
 * {@link SequenceLayout#globalPositions(PackedSequences, Mesh, int)}, passes the global cu_seqlens, and
 * the gathered results equal each sequence attended alone in float64 (F32, relative Frobenius error 1e-4).
 */
class PackedSequencesApiTest {

    @ParameterizedTest(name = "mesh {0}x{1} causal={2} {3}")
    @CsvSource({"2, 2, true, CONTIGUOUS", "1, 4, true, ZIGZAG", "2, 1, false, CONTIGUOUS", "2, 2, true, ZIGZAG"})
    void layersOverPackedSequencesEqualEachSequenceAlone(int u, int r, boolean causal, SequenceLayout layout) {
        Mesh mesh = new Mesh(u, r);
        PackedSequences packed = layout == SequenceLayout.ZIGZAG ? PackedSequences.ofLengths(8, 16, 8)
                : PackedSequences.ofLengths(1, 20, 3, 8);
        long s = packed.totalLength(), h = 4, hkv = 2, d = 8;
        AttentionOptions options = AttentionOptions.defaults().withCausal(causal).withLayout(layout);
        try (Arena arena = Arena.ofShared()) {
            Tensor q = GlobalAttention.random(arena, DType.F32, 1, 1, s, h, d);
            Tensor k = GlobalAttention.random(arena, DType.F32, 2, 1, s, hkv, d);
            Tensor v = GlobalAttention.random(arena, DType.F32, 3, 1, s, hkv, d);
            Tensor dout = GlobalAttention.random(arena, DType.F32, 4, 1, s, h, d);
            Tensor out = Tensor.allocate(arena, DType.F32, 1, s, h, d);
            Tensor dq = Tensor.allocate(arena, DType.F32, 1, s, h, d);
            Tensor dk = Tensor.allocate(arena, DType.F32, 1, s, hkv, d);
            Tensor dv = Tensor.allocate(arena, DType.F32, 1, s, hkv, d);
            try (InProcessWorld world = Usp4j.cpuWorld(mesh.size())) {
                world.run(rank -> {
                    long[] positions = layout.globalPositions(packed, mesh, rank.rank());
                    Tensor lq = GlobalAttention.rows(q, positions, arena), lk = GlobalAttention.rows(k, positions, arena);
                    Tensor lv = GlobalAttention.rows(v, positions, arena);
                    Tensor ldout = GlobalAttention.rows(dout, positions, arena);
                    Tensor lout = Tensor.allocate(arena, DType.F32, lq.shape());
                    Tensor ldq = Tensor.allocate(arena, DType.F32, lq.shape());
                    Tensor ldk = Tensor.allocate(arena, DType.F32, lk.shape());
                    Tensor ldv = Tensor.allocate(arena, DType.F32, lv.shape());
                    try (AttentionLayer layer = rank.newAttention(mesh, options)) {
                        layer.forward(lq, lk, lv, lout, packed);
                        layer.backward(ldout, ldq, ldk, ldv);
                    }
                    for (int i = 0; i < positions.length; i++) {
                        HostTensors.copy(lout.slice(1, i, 1), out.slice(1, positions[i], 1));
                        HostTensors.copy(ldq.slice(1, i, 1), dq.slice(1, positions[i], 1));
                        HostTensors.copy(ldk.slice(1, i, 1), dk.slice(1, positions[i], 1));
                        HostTensors.copy(ldv.slice(1, i, 1), dv.slice(1, positions[i], 1));
                    }
                    return null;
                });
            }
            PackedReference ref = PackedReference.of(arena, q, k, v, dout, SequenceBoundaries.of(packed.cuSeqlens()),
                    causal, (float) (1 / Math.sqrt(d)));
            check("out", ref.out(), out);
            check("dq", ref.dq(), dq);
            check("dk", ref.dk(), dk);
            check("dv", ref.dv(), dv);
        }
    }

    @Test
    void badOffsetsAreRefusedBeforeAnyCommunication() {
        assertThrows(IllegalArgumentException.class, () -> PackedSequences.of(0, 4, 4));
        assertThrows(IllegalArgumentException.class, () -> PackedSequences.ofLengths(3, 0));
        Mesh mesh = new Mesh(1, 2);
        try (Arena arena = Arena.ofShared(); InProcessWorld world = Usp4j.cpuWorld(2)) {
            world.run(rank -> {
                Tensor x = GlobalAttention.random(arena, DType.F32, 1, 1, 8, 2, 8);
                Tensor out = Tensor.allocate(arena, DType.F32, x.shape());
                try (AttentionLayer layer = rank.newAttention(mesh, AttentionOptions.defaults())) {
                    IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                            () -> layer.forward(x, x, x, out, PackedSequences.ofLengths(4, 4)));
                    assertTrue(e.getMessage().contains("cu_seqlens ends at 8 but the sequence length s is 16"),
                            e.getMessage());
                }
                return null;
            });
        }
    }

    private static void check(String name, Tensor expected, Tensor actual) {
        double error = HostTensors.relativeError(actual, expected);
        assertTrue(error <= 1e-4, name + ": relative Frobenius error " + error);
    }
}
