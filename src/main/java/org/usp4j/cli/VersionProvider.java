package org.usp4j.cli;

import picocli.CommandLine.IVersionProvider;

/** {@code --version}: usp4j's version (from the jar's manifest) and the JDK it runs on. */
final class VersionProvider implements IVersionProvider {

    /** The version in the jar's manifest, or "dev" when running from a class folder. */
    static String version() {
        String v = Main.class.getPackage().getImplementationVersion();
        return v != null ? v : "dev";
    }

    @Override
    public String[] getVersion() {
        return new String[] {
            "usp4j " + version(),
            "JDK " + Runtime.version() + " (" + System.getProperty("java.vendor") + ", "
                    + System.getProperty("os.name") + " " + System.getProperty("os.arch") + ")"
        };
    }
}
