package org.usp4j.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorShape;
import jdk.incubator.vector.VectorSpecies;

/**
 * The float vector species of the CPU kernel and of {@link FmaPeak}: the machine's widest, or a narrower
 * one named by the system property {@value #PROPERTY} (128, 256 or 512 bits, at most the widest), so that
 * a 512-bit machine can measure the 256-bit code path too. It is read once, when the kernel classes load:
 * the species must be a constant for C2 to compile vector operations to instructions.
 */
final class VectorWidth {

    static final String PROPERTY = "usp4j.cpu.vectorBits";

    static final VectorSpecies<Float> SPECIES = choose(System.getProperty(PROPERTY));

    private VectorWidth() {
    }

    static VectorSpecies<Float> choose(String bits) {
        VectorSpecies<Float> widest = FloatVector.SPECIES_PREFERRED;
        if (bits == null || bits.isBlank() || bits.strip().equals("max")) {
            return widest;
        }
        int size;
        try {
            size = Integer.parseInt(bits.strip());
        } catch (NumberFormatException e) {
            size = -1;
        }
        if ((size != 128 && size != 256 && size != 512) || size > widest.vectorBitSize()) {
            throw new IllegalArgumentException(PROPERTY + " must be max, 128, 256 or 512 and at most this machine's "
                    + widest.vectorBitSize() + " bits, got '" + bits + "'");
        }
        return VectorSpecies.of(float.class, VectorShape.forBitSize(size));
    }
}
