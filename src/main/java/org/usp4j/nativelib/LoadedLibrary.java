package org.usp4j.nativelib;

import java.nio.file.Path;

/**
 * A native library that usp4j found, checked and loaded into the process.
 *
 * @param library  which library
 * @param path     the file that was loaded
 * @param version  the version the library itself reported
 * @param location the place it was found in, as listed by {@link LibraryNotFoundException}
 */
public record LoadedLibrary(NativeLibrary library, Path path, LibraryVersion version, String location) {

    @Override
    public String toString() {
        return library.displayName() + " " + version + " (" + path + ", " + location + ")";
    }
}
