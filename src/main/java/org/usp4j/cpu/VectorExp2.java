package org.usp4j.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * 2^x on float vectors, the one transcendental of the softmax. The kernel works in base 2 (scores are
 * pre-scaled by log2(e)), so exp2 is all it needs: x = n + f with n = round(x) and |f| <= 1/2, then
 * 2^x = 2^f * 2^n, where 2^f is a degree-5 polynomial (coefficients from a least-squares fit of the
 * relative error on [-1/2, 1/2], at most 2.3e-7 relative error in float32) and 2^n is added to the
 * exponent bits. Inputs below -125 (masked scores are -inf) give exactly 0. A NaN input gives NaN
 * when its low payload bits are clear (Float.NaN and the NaN that float arithmetic produces): they
 * are what would be shifted into the exponent.
 *
 * <p>No clamping with max/min: Java's float max and min (NaN and signed-zero rules) cost several
 * instructions per vector on x86, so out-of-range inputs are replaced by a blend at the end instead.
 */
final class VectorExp2 {

    private static final VectorSpecies<Float> SPECIES = TileGemm.SPECIES;

    /** 1.5 * 2^23: adding it rounds a float in [-2^22, 2^22] to an integer held in the low mantissa bits. */
    private static final float ROUNDING_MAGIC = 12582912f;
    private static final float C0 = 1.0000001192092896f;
    private static final float C1 = 0.6931469440460205f;
    private static final float C2 = 0.24022121727466583f;
    private static final float C3 = 0.05550742521882057f;
    private static final float C4 = 0.009675459936261177f;
    private static final float C5 = 0.0013266970636323094f;

    private VectorExp2() {
    }

    /** 2^x for x <= 127 (the softmax's x = s - max <= 0); below -125 the result is 0. */
    static FloatVector exp2(FloatVector x) {
        FloatVector t = x.add(ROUNDING_MAGIC);
        FloatVector n = t.sub(ROUNDING_MAGIC);
        FloatVector f = x.sub(n);
        FloatVector p = f.fma(C5, C4);
        p = p.fma(f, FloatVector.broadcast(SPECIES, C3));
        p = p.fma(f, FloatVector.broadcast(SPECIES, C2));
        p = p.fma(f, FloatVector.broadcast(SPECIES, C1));
        p = p.fma(f, FloatVector.broadcast(SPECIES, C0));
        // t's low mantissa bits hold n in two's complement; shifting by 23 drops everything else.
        IntVector exponent = t.reinterpretAsInts().lanewise(VectorOperators.LSHL, 23);
        FloatVector result = p.reinterpretAsInts().add(exponent).reinterpretAsFloats();
        return result.blend(0f, x.lt(-125f));
    }

    /** 2^x for any x: as {@link #exp2(FloatVector)}, and +inf above 127 (where the float range ends). */
    static FloatVector exp2Unbounded(FloatVector x) {
        return exp2(x).blend(Float.POSITIVE_INFINITY, x.compare(VectorOperators.GT, 127f));
    }
}
