package org.usp4j.gpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import org.junit.jupiter.api.Test;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/** How the CUDA backend sees copies: one memcpy, one 2-D memcpy, or a strided kernel of at most 6 dims. */
class StridedGeometryTest {

    private final Arena arena = Arena.ofAuto();

    @Test
    void contiguousTensorsMergeIntoOneDimension() {
        Tensor a = Tensor.allocate(arena, DType.BF16, 2, 64, 8, 40);
        Tensor b = Tensor.allocate(arena, DType.F32, 2, 64, 8, 40);
        StridedGeometry g = StridedGeometry.of(a, b);
        assertArrayEquals(new long[] {2 * 64 * 8 * 40}, g.shape());
        assertTrue(g.isContiguous(0) && g.isContiguous(1));
    }

    @Test
    void aHeadSliceIsTwoDimensionsWithUnitInnerStride() {
        Tensor x = Tensor.allocate(arena, DType.BF16, 2, 64, 8, 40);
        Tensor packed = Tensor.allocate(arena, DType.BF16, 2, 64, 2, 40);
        StridedGeometry g = StridedGeometry.of(x.slice(2, 4, 2), packed);
        assertArrayEquals(new long[] {2 * 64, 2 * 40}, g.shape());
        assertArrayEquals(new long[] {8 * 40, 1}, g.strides()[0]);
        assertArrayEquals(new long[] {2 * 40, 1}, g.strides()[1]);
        assertFalse(g.isContiguous(0));
        assertTrue(g.isPitchedRows(), "a head slice is one cudaMemcpy2DAsync");
    }

    @Test
    void aBroadcastRowIsNoPitchedCopy() {
        // One row read for every destination row: the source pitch is 0, which cudaMemcpy2DAsync refuses.
        Tensor row = Tensor.allocate(arena, DType.F32, 1, 16);
        Tensor replicated = row.withGeometry(new long[] {4, 16}, new long[] {0, 1}, 0);
        Tensor out = Tensor.allocate(arena, DType.F32, 4, 16);
        StridedGeometry g = StridedGeometry.of(replicated, out);
        assertArrayEquals(new long[] {4, 16}, g.shape());
        assertFalse(g.isPitchedRows());
        Tensor transposed = Tensor.allocate(arena, DType.F32, 16, 4).transpose(0, 1);
        assertFalse(StridedGeometry.of(transposed, out).isPitchedRows(), "inner stride 4 is no row copy");
    }

    @Test
    void sizeOneDimensionsDropAndPaddingFillsToSixDims() {
        Tensor x = Tensor.allocate(arena, DType.F32, 1, 16, 1, 4);
        Tensor t = x.transpose(1, 3); // [1, 4, 1, 16] with strides that do not merge
        Tensor y = Tensor.allocate(arena, DType.F32, 1, 4, 1, 16);
        StridedGeometry g = StridedGeometry.of(t, y);
        assertArrayEquals(new long[] {4, 16}, g.shape());
        assertArrayEquals(new long[] {1, 1, 1, 1, 4, 16}, g.paddedShape());
        assertArrayEquals(new long[] {0, 0, 0, 0, 1, 4}, g.paddedStrides(0));
        assertEquals(64, g.numel());
    }

    @Test
    void zeroStridesAreKeptForBroadcastReads() {
        Tensor kv = Tensor.allocate(arena, DType.BF16, 2, 8, 1, 16);
        Tensor replicated = kv.withGeometry(new long[] {2, 8, 3, 16}, new long[] {128, 16, 0, 1}, 0);
        Tensor out = Tensor.allocate(arena, DType.BF16, 2, 8, 3, 16);
        StridedGeometry g = StridedGeometry.of(replicated, out);
        assertArrayEquals(new long[] {16, 3, 16}, g.shape());
        assertArrayEquals(new long[] {16, 0, 1}, g.strides()[0]);
    }

    @Test
    void moreThanSixUnmergeableDimensionsAreRefused() {
        long[] shape = {2, 2, 2, 2, 2, 2, 2};
        long[] strides = {1, 4, 16, 64, 2, 8, 32}; // a permutation: nothing merges
        Tensor t = Tensor.allocate(arena, DType.F32, 128).withGeometry(shape, strides, 0);
        StridedGeometry g = StridedGeometry.of(t);
        assertEquals(7, g.rank());
        assertThrows(IllegalArgumentException.class, g::paddedShape);
        assertThrows(IllegalArgumentException.class, () -> StridedGeometry.of(t, Tensor.allocate(arena, DType.F32, 2, 2)));
    }
}
