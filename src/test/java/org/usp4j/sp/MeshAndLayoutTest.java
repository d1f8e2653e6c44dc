package org.usp4j.sp;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.Arrays;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.api.Mesh;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

class MeshAndLayoutTest {

    @Test
    void meshCoordinatesAndGroups() {
        Mesh mesh = new Mesh(2, 3);
        assertEquals(6, mesh.size());
        assertEquals(0, mesh.ulyssesRank(4));
        assertEquals(2, mesh.ringRank(4));
        assertEquals(5, mesh.rank(1, 2));
        assertArrayEquals(new int[] {2, 3}, mesh.ulyssesGroup(1));
        assertArrayEquals(new int[] {1, 3, 5}, mesh.ringGroup(1));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new Mesh(0, 2));
        assertTrue(e.getMessage().contains("ulysses 0") && e.getMessage().contains("ring 2"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> mesh.ringRank(6));
        assertThrows(IllegalArgumentException.class, () -> mesh.rank(2, 0));
    }

    @Test
    void zigzagDealsChunksGAnd2RMinus1MinusGCutIntoUlyssesPieces() {
        // S = 24, U = 3, R = 2: chunks of 6; ring block 0 = [0, 6) + [18, 24), cut into pieces of 4.
        Mesh mesh = new Mesh(3, 2);
        SequenceLayout z = SequenceLayout.ZIGZAG;
        assertArrayEquals(new long[] {0, 1, 2, 3}, z.globalPositions(24, mesh, 0));
        assertArrayEquals(new long[] {4, 5, 18, 19}, z.globalPositions(24, mesh, 1));
        assertArrayEquals(new long[] {20, 21, 22, 23}, z.globalPositions(24, mesh, 2));
        assertArrayEquals(new long[] {6, 7, 8, 9}, z.globalPositions(24, mesh, 3));
        assertArrayEquals(new long[] {10, 11, 12, 13}, z.globalPositions(24, mesh, 4));
        assertArrayEquals(new long[] {14, 15, 16, 17}, z.globalPositions(24, mesh, 5));
        assertEquals(2, z.runs(24, mesh, 1).size());
        // Contiguous: ring block g = [g S/R, (g+1) S/R), in Ulysses order.
        assertArrayEquals(new long[] {16, 17, 18, 19}, SequenceLayout.CONTIGUOUS.globalPositions(24, mesh, 4));
    }

    @ParameterizedTest
    @CsvSource({"1,1,8", "1,2,8", "2,1,8", "2,2,16", "1,4,16", "4,1,16", "2,3,24", "3,2,36", "1,8,32", "8,1,48"})
    void everyLayoutIsAPermutationAndRingBlocksAreWhatTheRingExpects(int u, int r, long s) {
        Mesh mesh = new Mesh(u, r);
        for (SequenceLayout layout : SequenceLayout.values()) {
            long[] all = new long[(int) s];
            int i = 0;
            for (int rank = 0; rank < mesh.size(); rank++) {
                for (long p : layout.globalPositions(s, mesh, rank)) {
                    all[i++] = p;
                }
            }
            long[] sorted = all.clone();
            Arrays.sort(sorted);
            assertArrayEquals(LongStream.range(0, s).toArray(), sorted, layout + " " + mesh);
            // The Ulysses group of ring rank g, concatenated in Ulysses order, is ring block g.
            for (int g = 0; g < r; g++) {
                long[] block = new long[(int) (s / r)];
                int j = 0;
                for (int rank : mesh.ulyssesGroup(g)) {
                    for (long p : layout.globalPositions(s, mesh, rank)) {
                        block[j++] = p;
                    }
                }
                assertArrayEquals(layout.globalPositions(s, new Mesh(1, r), g), block);
                if (layout == SequenceLayout.ZIGZAG) {
                    long chunk = s / (2L * r);
                    assertEquals(g * chunk, block[0]);
                    assertEquals((2L * r - 1 - g) * chunk, block[block.length / 2]);
                }
            }
        }
    }

    @ParameterizedTest
    @CsvSource({"2,2,ZIGZAG", "3,2,ZIGZAG", "2,3,CONTIGUOUS", "1,4,ZIGZAG"})
    void shardAndUnshardRoundTripForBshdAndLse(int u, int r, SequenceLayout layout) {
        Mesh mesh = new Mesh(u, r);
        long s = 2L * mesh.size() * 3;
        try (Arena arena = Arena.ofConfined()) {
            Tensor x = Tensor.allocate(arena, DType.BF16, 2, s, 3, 5);
            HostTensors.fillNormal(x, 11);
            Tensor lse = Tensor.allocate(arena, DType.F32, 2, 3, s);
            HostTensors.fillNormal(lse, 12);
            Tensor xBack = Tensor.allocate(arena, DType.BF16, 2, s, 3, 5);
            Tensor lseBack = Tensor.allocate(arena, DType.F32, 2, 3, s);
            long local = s / mesh.size();
            for (int rank = 0; rank < mesh.size(); rank++) {
                Tensor xl = Tensor.allocate(arena, DType.BF16, 2, local, 3, 5);
                Tensor ll = Tensor.allocate(arena, DType.F32, 2, 3, local);
                layout.shard(x, xl, 1, mesh, rank, HostTensors::copy);
                layout.shard(lse, ll, 2, mesh, rank, HostTensors::copy);
                long[] positions = layout.globalPositions(s, mesh, rank);
                for (int i = 0; i < local; i++) {
                    assertEquals(x.get(1, positions[i], 2, 4), xl.get(1, i, 2, 4));
                    assertEquals(lse.get(1, 2, positions[i]), ll.get(1, 2, i));
                }
                layout.unshard(xl, xBack, 1, mesh, rank, HostTensors::copy);
                layout.unshard(ll, lseBack, 2, mesh, rank, HostTensors::copy);
            }
            assertArrayEquals(HostTensors.toFloatArray(x), HostTensors.toFloatArray(xBack));
            assertArrayEquals(HostTensors.toFloatArray(lse), HostTensors.toFloatArray(lseBack));
            Tensor wrong = Tensor.allocate(arena, DType.BF16, 2, local + 1, 3, 5);
            assertThrows(IllegalArgumentException.class, () -> layout.shard(x, wrong, 1, mesh, 0, HostTensors::copy));
        }
    }

    @Test
    void layoutsRefuseLengthsThatDoNotDeal() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> SequenceLayout.CONTIGUOUS.validate(32, new Mesh(1, 3)));
        assertTrue(e.getMessage().contains("S = 32") && e.getMessage().contains("P = 3"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> SequenceLayout.ZIGZAG.validate(36, new Mesh(2, 2)));
        assertTrue(e.getMessage().contains("S = 36") && e.getMessage().contains("2P = 8"), e.getMessage());
        SequenceLayout.CONTIGUOUS.validate(36, new Mesh(2, 2));
        assertThrows(IllegalArgumentException.class, () -> SequenceLayout.CONTIGUOUS.validate(0, new Mesh(1, 1)));
        assertEquals(SequenceLayout.ZIGZAG, SequenceLayout.parse("ZigZag"));
        e = assertThrows(IllegalArgumentException.class, () -> SequenceLayout.parse("stripe"));
        assertTrue(e.getMessage().contains("stripe"), e.getMessage());
    }
}
