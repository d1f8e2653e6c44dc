package org.usp4j.nativelib;

import java.io.IOException;
import java.io.InputStream;
import java.net.JarURLConnection;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

/**
 * Native libraries inside bytedeco's {@code org.bytedeco:cuda:*:<platform>-redist} jars on the class
 * path. A library cannot be loaded from inside a jar, so the file (and its companions, e.g. cuDNN's
 * sub-libraries, which must share its directory) is extracted once to a cache directory keyed by
 * the jar's name, size and modification time.
 */
final class RedistJars {

    private static final Logger LOG = LogManager.getLogger(RedistJars.class);

    private RedistJars() {
    }

    /** The resource folder of this platform's libraries, e.g. org/bytedeco/cuda/linux-x86_64/. */
    static String resourceFolder() {
        String arch = System.getProperty("os.arch", "").toLowerCase(Locale.ROOT);
        String platform = arch.equals("aarch64") || arch.equals("arm64") ? "linux-arm64" : "linux-x86_64";
        return "org/bytedeco/cuda/" + platform + "/";
    }

    /**
     * Finds {@code library} in a redist jar (or an unpacked copy) visible to {@code loader} and returns
     * a file that can be loaded, extracting it under {@code cacheDir} when it sits in a jar.
     */
    static Optional<Path> locate(NativeLibrary library, ClassLoader loader, Path cacheDir) throws IOException {
        String folder = resourceFolder();
        URL url = loader.getResource(folder + library.fileName());
        if (url == null) {
            return Optional.empty();
        }
        try {
            if (url.getProtocol().equals("file")) {
                return Optional.of(Path.of(url.toURI()));
            }
            if (!url.getProtocol().equals("jar")) {
                return Optional.empty();
            }
            JarURLConnection connection = (JarURLConnection) url.openConnection();
            connection.setUseCaches(false);
            Path jar = Path.of(connection.getJarFileURL().toURI());
            return Optional.of(extract(jar, folder, library, cacheDir));
        } catch (URISyntaxException e) {
            throw new IOException("unusable resource URL " + url, e);
        }
    }

    static Path extract(Path jar, String folder, NativeLibrary library, Path cacheDir) throws IOException {
        String jarName = jar.getFileName().toString().replaceFirst("\\.jar$", "");
        Path target = cacheDir.resolve("redist").resolve(
                jarName + "-" + Files.size(jar) + "-" + Files.getLastModifiedTime(jar).toMillis());
        Files.createDirectories(target);
        try (JarFile jarFile = new JarFile(jar.toFile())) {
            List<JarEntry> wanted = new ArrayList<>();
            for (Enumeration<JarEntry> e = jarFile.entries(); e.hasMoreElements(); ) {
                JarEntry entry = e.nextElement();
                String name = entry.getName();
                if (entry.isDirectory() || !name.startsWith(folder) || name.indexOf('/', folder.length()) >= 0) {
                    continue;
                }
                String file = name.substring(folder.length());
                boolean companion = library.companionPrefix().map(p -> file.startsWith(p) && file.contains(".so")).orElse(false);
                if (file.equals(library.fileName()) || companion) {
                    wanted.add(entry);
                }
            }
            for (JarEntry entry : wanted) {
                Path out = target.resolve(entry.getName().substring(folder.length()));
                if (Files.isRegularFile(out) && Files.size(out) == entry.getSize()) {
                    continue; // extracted before
                }
                LOG.info("Extracting {} from {} to {}", entry.getName(), jar, target);
                Path tmp = Files.createTempFile(target, out.getFileName().toString(), ".part");
                try (InputStream in = jarFile.getInputStream(entry)) {
                    Files.copy(in, tmp, StandardCopyOption.REPLACE_EXISTING);
                    Files.move(tmp, out, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
                } finally {
                    Files.deleteIfExists(tmp);
                }
            }
        }
        return target.resolve(library.fileName());
    }
}
