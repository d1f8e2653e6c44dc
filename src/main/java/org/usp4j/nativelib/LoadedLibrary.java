package org.usp4j.nativelib;

import java.nio.file.Path;
import java.util.List;

/**
 * A native library that usp4j found, checked and loaded into the process.
 *
 * @param library   which library
 * @param path      the file that was loaded
 * @param version   the version the library itself reported
 * @param location  the place it was found in, as listed by {@link LibraryNotFoundException}
 * @param alsoFound other acceptable copies that were found and not chosen ("version at path (location)")
 */
public record LoadedLibrary(NativeLibrary library, Path path, LibraryVersion version, String location,
                            List<String> alsoFound) {

    public LoadedLibrary {
        alsoFound = List.copyOf(alsoFound);
    }

    public LoadedLibrary(NativeLibrary library, Path path, LibraryVersion version, String location) {
        this(library, path, version, location, List.of());
    }

    @Override
    public String toString() {
        return library.displayName() + " " + version + " (" + path + ", " + location + ")";
    }
}
