package org.usp4j.nativelib;

import java.util.List;

/**
 * No usable file of a native library was found. The message lists every place tried, in order,
 * with why it did not fit, and the settings that name the library explicitly.
 */
public final class LibraryNotFoundException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final transient NativeLibrary library;
    private final List<String> placesTried;

    public LibraryNotFoundException(NativeLibrary library, List<String> placesTried) {
        super(message(library, placesTried));
        this.library = library;
        this.placesTried = List.copyOf(placesTried);
    }

    public NativeLibrary library() {
        return library;
    }

    /** One line per place, in the order they were tried. */
    public List<String> placesTried() {
        return placesTried;
    }

    private static String message(NativeLibrary library, List<String> placesTried) {
        StringBuilder sb = new StringBuilder()
                .append("No usable ").append(library.displayName()).append(" library (")
                .append(library.fileName()).append(", version ").append(library.minimumVersion())
                .append(" or newer, below ").append(library.versionLimit()).append(") was found. Places tried:");
        for (String place : placesTried) {
            sb.append("\n  - ").append(place);
        }
        sb.append("\nName the file or its directory with -D").append(library.propertyName())
                .append("=<path> or the environment variable ").append(library.environmentVariable()).append('.');
        return sb.toString();
    }
}
