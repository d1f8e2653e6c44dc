package org.usp4j.nativelib;

import java.nio.file.Path;
import java.util.List;

/** Test bridge to package-private parts of the resolver. */
public final class LibraryResolutionAccess {

    private LibraryResolutionAccess() {
    }

    public static List<Path> parseLdconfig(String output, String fileName) {
        return LibraryLocations.parseLdconfig(output, fileName);
    }
}
