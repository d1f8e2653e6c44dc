package org.usp4j.sp;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

class UlyssesAllToAllTest {

    /** Element value that encodes (batch, global position, head, x) so every move can be checked. */
    private static float code(long b, long pos, long head, long x) {
        return b * 100000 + pos * 1000 + head * 10 + x;
    }

    @ParameterizedTest
    @CsvSource({"2,1,4,4", "4,2,8,2", "4,1,8,1", "3,2,6,3", "2,2,2,1"})
    void scatterGivesEachRankItsHeadsOverTheGroupSequenceAndGatherUndoesIt(int u, int batch, int h, int hkv) {
        int s = 3;
        int d = 2;
        try (LocalWorld world = new LocalWorld(u); Arena arena = Arena.ofShared()) {
            world.run((rank, comm) -> {
                CpuBackend backend = new CpuBackend(new ReferenceAttention());
                UlyssesAllToAll a2a = new UlyssesAllToAll(comm, backend);
                try (TensorAllocator keep = backend.newAllocator(); TensorAllocator scratch = backend.newAllocator()) {
                    Tensor q = Tensor.allocate(arena, DType.F32, batch, s, h, d);
                    Tensor k = Tensor.allocate(arena, DType.F32, batch, s, hkv, d);
                    for (int b = 0; b < batch; b++) {
                        for (int p = 0; p < s; p++) {
                            for (int x = 0; x < d; x++) {
                                for (int head = 0; head < h; head++) {
                                    q.set(code(b, rank * s + p, head, x), b, p, head, x);
                                }
                                for (int head = 0; head < hkv; head++) {
                                    k.set(code(b, rank * s + p, head, x), b, p, head, x);
                                }
                            }
                        }
                    }
                    Tensor qh = a2a.scatterHeads(q, keep, scratch);
                    Tensor kh = a2a.scatterKvHeads(k, keep, scratch);
                    long hu = h / u;
                    long hkvX = Math.max(hkv, u) / u;
                    assertArrayEquals(new long[] {batch, (long) u * s, hu, d}, qh.shape());
                    assertArrayEquals(new long[] {batch, (long) u * s, hkvX, d}, kh.shape());
                    long replicas = hkv < u ? u / hkv : 1;
                    for (int b = 0; b < batch; b++) {
                        for (int p = 0; p < u * s; p++) {
                            for (int x = 0; x < d; x++) {
                                for (int j = 0; j < hu; j++) {
                                    assertEquals(code(b, p, rank * hu + j, x), qh.get(b, p, j, x));
                                }
                                for (int j = 0; j < hkvX; j++) {
                                    // Exchanged KV head e = rank hkvX + j is original head e / replicas.
                                    long original = (rank * hkvX + j) / replicas;
                                    assertEquals(code(b, p, original, x), kh.get(b, p, j, x));
                                }
                            }
                        }
                    }
                    Tensor qBack = a2a.gatherHeads(qh, keep, scratch);
                    assertArrayEquals(HostTensors.toFloatArray(q), HostTensors.toFloatArray(qBack));
                    // The gradient of the replication sums the replicas: identical replicas give replicas * k.
                    Tensor kBack = a2a.gatherKvHeads(kh, hkv, keep, scratch);
                    float[] kv = HostTensors.toFloatArray(k);
                    float[] back = HostTensors.toFloatArray(kBack);
                    for (int i = 0; i < kv.length; i++) {
                        assertEquals(replicas * kv[i], back[i], 1e-3f * Math.abs(kv[i]));
                    }
                }
                return null;
            });
            long perSlice = 1L * batch * s * d * 4;
            long expected = (u - 1) * perSlice * (2L * (h / u) + 2L * (Math.max(hkv, u) / u));
            for (int r = 0; r < u; r++) {
                assertEquals(expected, world.traffic(r).bytesSent(TrafficKind.ALL_TO_ALL));
            }
        }
    }

    @Test
    void headCountsThatDoNotSplitAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> UlyssesAllToAll.validateHeads(6, 6, 4));
        assertThrows(IllegalArgumentException.class, () -> UlyssesAllToAll.validateHeads(12, 3, 4));
        UlyssesAllToAll.validateHeads(8, 1, 8);
        UlyssesAllToAll.validateHeads(8, 2, 4);
        UlyssesAllToAll.validateHeads(12, 6, 3);
        assertEquals(4, UlyssesAllToAll.exchangedKvHeads(2, 4));
        assertEquals(8, UlyssesAllToAll.exchangedKvHeads(8, 4));
    }
}
