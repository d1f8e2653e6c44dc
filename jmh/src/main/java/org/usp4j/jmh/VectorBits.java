package org.usp4j.jmh;

import java.util.function.IntSupplier;

/**
 * The {@code vectorBits} parameter of the CPU benchmarks: {@link #MAX} (the machine's widest vectors) or
 * a width in bits, handed to the kernel classes through {@code -Dusp4j.cpu.vectorBits} before they load.
 */
final class VectorBits {

    static final String MAX = "max";
    static final String PROPERTY = "usp4j.cpu.vectorBits";

    private VectorBits() {
    }

    /**
     * Sets the width for this fork and checks that the loaded classes use it ({@code actual} reads their
     * width, loading them): a class loaded earlier in the fork with another width fails the run loudly.
     */
    static void select(String vectorBits, IntSupplier actual) {
        System.setProperty(PROPERTY, vectorBits);
        int bits = actual.getAsInt();
        if (!vectorBits.equals(MAX) && bits != Integer.parseInt(vectorBits)) {
            throw new IllegalStateException("asked for " + vectorBits + "-bit vectors, but the kernel classes already"
                    + " loaded with " + bits + " bits in this JVM (run with forks, -f 1 or more)");
        }
    }
}
