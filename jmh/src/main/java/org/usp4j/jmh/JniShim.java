package org.usp4j.jmh;

import java.nio.file.Path;

/** Java side of the JNI shim (jmh/src/main/c/usp4j_jni_shim.c): the JNI baseline for downcall cost. */
final class JniShim {

    private JniShim() {
    }

    /** Loads the shim library and resolves the three functions from the given library files. */
    static void load(Path shimLibrary, Path nccl, Path cudnn, Path cudart) {
        System.load(shimLibrary.toAbsolutePath().toString());
        int found = load(nccl.toString(), cudnn.toString(), cudart.toString());
        if (found != 7) {
            throw new IllegalStateException("JNI shim resolved only function mask " + found + " of 7 from "
                    + nccl + ", " + cudnn + ", " + cudart);
        }
    }

    private static native int load(String nccl, String cudnn, String cudart);

    static native int ncclGetVersion();

    static native long cudnnGetVersion();

    static native int cudaRuntimeGetVersion();
}
