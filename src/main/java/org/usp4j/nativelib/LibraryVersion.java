package org.usp4j.nativelib;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/** A library version, major.minor.patch, ordered numerically. */
public record LibraryVersion(int major, int minor, int patch) implements Comparable<LibraryVersion> {

    private static final Pattern DOTTED = Pattern.compile("(\\d+)(?:\\.(\\d+))?(?:\\.(\\d+))?");

    public LibraryVersion {
        if (major < 0 || minor < 0 || patch < 0) {
            throw new IllegalArgumentException("negative version component in " + major + "." + minor + "." + patch);
        }
    }

    public static LibraryVersion of(int major, int minor, int patch) {
        return new LibraryVersion(major, minor, patch);
    }

    /** Parses "2", "2.28" or "2.28.3". */
    public static LibraryVersion parse(String text) {
        Matcher m = DOTTED.matcher(text.strip());
        if (!m.matches()) {
            throw new IllegalArgumentException("not a version (expected major[.minor[.patch]]): '" + text + "'");
        }
        return new LibraryVersion(Integer.parseInt(m.group(1)),
                m.group(2) == null ? 0 : Integer.parseInt(m.group(2)),
                m.group(3) == null ? 0 : Integer.parseInt(m.group(3)));
    }

    public boolean isAtLeast(LibraryVersion other) {
        return compareTo(other) >= 0;
    }

    @Override
    public int compareTo(LibraryVersion o) {
        int c = Integer.compare(major, o.major);
        if (c == 0) {
            c = Integer.compare(minor, o.minor);
        }
        return c != 0 ? c : Integer.compare(patch, o.patch);
    }

    @Override
    public String toString() {
        return major + "." + minor + "." + patch;
    }
}
