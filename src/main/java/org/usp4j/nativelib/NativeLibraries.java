package org.usp4j.nativelib;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Finds, checks and loads the native libraries, once per process. The generated bindings look
 * symbols up through {@link SymbolLookup#loaderLookup()}, so every wrapper calls {@link #load}
 * before its first native call; this class {@code System.load()}s the accepted file, which makes
 * its symbols visible to the bindings (both live in the same class loader).
 *
 * <p>Each candidate file is first opened privately and asked for its version; only a file whose
 * version is accepted is loaded for real, so an old copy earlier on the search path is reported
 * and skipped instead of shadowing a good one.
 */
public final class NativeLibraries {

    private static final Logger LOG = LogManager.getLogger(NativeLibraries.class);

    private static final Map<NativeLibrary, LoadedLibrary> LOADED = new EnumMap<>(NativeLibrary.class);
    private static final Map<NativeLibrary, List<String>> FAILED = new EnumMap<>(NativeLibrary.class);
    private static final Map<NativeLibrary, SymbolLookup> LOOKUPS = new EnumMap<>(NativeLibrary.class);
    private static final Map<String, Boolean> FUNCTIONS = new ConcurrentHashMap<>();

    private NativeLibraries() {
    }

    /**
     * The loaded library, resolving and loading it on first use.
     *
     * @throws LibraryNotFoundException when no acceptable file exists (the outcome is remembered)
     */
    @SuppressWarnings("restricted") // opening native libraries is this class's job
    public static LoadedLibrary load(NativeLibrary library) {
        synchronized (LOADED) {
            LoadedLibrary loaded = LOADED.get(library);
            if (loaded != null) {
                return loaded;
            }
            List<String> failed = FAILED.get(library);
            if (failed != null) {
                throw new LibraryNotFoundException(library, failed);
            }
            try {
                loaded = resolve(library, ResolverEnvironment.current());
            } catch (LibraryNotFoundException e) {
                FAILED.put(library, e.placesTried());
                throw e;
            }
            System.load(loaded.path().toString());
            LOOKUPS.put(library, SymbolLookup.libraryLookup(loaded.path(), Arena.global()));
            LOADED.put(library, loaded);
            LOG.info("Loaded {} {} from {} (found via {})", library.displayName(), loaded.version(), loaded.path(),
                    loaded.location());
            return loaded;
        }
    }

    /** Whether {@code library} can be loaded; never throws for a missing library. */
    public static boolean isAvailable(NativeLibrary library) {
        try {
            load(library);
            return true;
        } catch (LibraryNotFoundException e) {
            return false;
        }
    }

    /**
     * Finds the acceptable file of {@code library} in {@code env} without loading it for real: the first
     * one on the search path, or for a library that {@linkplain NativeLibrary#loadsNewestFound loads the
     * newest} the newest of all found (the first of equals), unless a setting names it explicitly.
     * Candidates are opened privately to read their version.
     */
    public static LoadedLibrary resolve(NativeLibrary library, ResolverEnvironment env) {
        return resolve(library, env, file -> probe(library, file));
    }

    /** How a candidate file's version is read (tests give made-up files their versions). */
    interface VersionProbe {
        LibraryVersion version(Path file);
    }

    static LoadedLibrary resolve(NativeLibrary library, ResolverEnvironment env, VersionProbe probe) {
        List<String> tried = new ArrayList<>();
        List<LibraryLocations.Location> locations = LibraryLocations.of(library, env);
        boolean newest = library.loadsNewestFound() && !LibraryLocations.isExplicit(library, env);
        List<LoadedLibrary> accepted = new ArrayList<>();
        for (LibraryLocations.Location location : locations) {
            List<Path> files;
            try {
                files = location.finder().find();
            } catch (IOException | RuntimeException e) {
                tried.add(location.description() + ": unusable (" + e + ")");
                continue;
            }
            if (files.isEmpty()) {
                tried.add(location.description() + ": no " + library.fileName());
                continue;
            }
            for (Path file : files) {
                if (accepted.stream().anyMatch(a -> a.path().equals(file))) {
                    continue; // the same file through another place
                }
                List<String> absent = library.requiredSiblings().stream()
                        .filter(sibling -> !Files.isRegularFile(file.resolveSibling(sibling))).toList();
                if (!absent.isEmpty()) {
                    tried.add(location.description() + ": " + file + " lacks " + String.join(", ", absent) + " beside it");
                    continue;
                }
                LibraryVersion version;
                try {
                    version = probe.version(file);
                } catch (RuntimeException e) {
                    tried.add(location.description() + ": " + file + " cannot be used (" + e.getMessage() + ")");
                    continue;
                }
                if (library.accepts(version)) {
                    LoadedLibrary found = new LoadedLibrary(library, file, version, location.description());
                    if (!newest) {
                        return found;
                    }
                    accepted.add(found);
                    continue;
                }
                tried.add(location.description() + ": " + file + " is version " + version
                        + ", outside the supported range [" + library.minimumVersion() + ", " + library.versionLimit() + ")");
            }
        }
        if (accepted.isEmpty()) {
            throw new LibraryNotFoundException(library, tried);
        }
        LoadedLibrary best = accepted.get(0);
        for (LoadedLibrary candidate : accepted) {
            if (candidate.version().compareTo(best.version()) > 0) {
                best = candidate;
            }
        }
        List<String> others = new ArrayList<>();
        for (LoadedLibrary candidate : accepted) {
            if (candidate != best) {
                others.add(candidate.version() + " at " + candidate.path() + " (" + candidate.location() + ")");
            }
        }
        if (!others.isEmpty()) {
            LOG.info("{} {} chosen as the newest of those found; also found: {}", library.displayName(), best.version(),
                    String.join("; ", others));
        }
        return new LoadedLibrary(library, best.path(), best.version(), best.location(), others);
    }

    // A probed library stays mapped (global arena): unloading code that may have registered
    // process-wide hooks is not worth the risk. It is opened RTLD_LOCAL, so its symbols do not leak.
    @SuppressWarnings("restricted")
    private static LibraryVersion probe(NativeLibrary library, Path file) {
        return library.queryVersion(SymbolLookup.libraryLookup(file, Arena.global()));
    }

    /** Whether the loaded {@code library} exports {@code function}. */
    public static boolean hasFunction(NativeLibrary library, String function) {
        load(library);
        return FUNCTIONS.computeIfAbsent(library.key() + ':' + function, k -> {
            synchronized (LOADED) {
                return LOOKUPS.get(library).find(function).isPresent();
            }
        });
    }

    /**
     * Fails unless the loaded {@code library} exports {@code function}; call before using a function
     * that came after the library's minimum version. The exception names the function, the version
     * that introduced it and the version loaded.
     */
    public static void requireFunction(NativeLibrary library, String function) {
        if (hasFunction(library, function)) {
            return;
        }
        LoadedLibrary loaded = load(library);
        String needs = library.functionSince(function)
                .map(v -> function + " needs " + library.displayName() + " " + v + " or newer")
                .orElse(function + " is not exported by the loaded library");
        throw new NativeFunctionUnavailableException(function, needs + "; the loaded " + library.fileName() + " is "
                + library.displayName() + " " + loaded.version() + " (" + loaded.path() + ")");
    }
}
