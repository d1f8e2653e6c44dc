package org.usp4j.cli;

import org.apache.logging.log4j.Level;

/**
 * Points Log4j 2 at the CLI's own configuration ({@value #CONFIG_RESOURCE}: stderr, warnings only). The
 * resource has a name Log4j never looks for by itself, so programs that embed usp4j keep their own
 * logging setup; the CLI names it explicitly, before the first logger exists.
 */
final class CliLogging {

    static final String CONFIG_RESOURCE = "org/usp4j/cli/usp4j-cli-log4j2.xml";
    private static final String CONFIGURATOR = "org.apache.logging.log4j.core.config.Configurator";

    private CliLogging() {
    }

    /** Installs the CLI's configuration unless the user chose one with -Dlog4j2.configurationFile. */
    static void install() {
        if (System.getProperty("log4j2.configurationFile") == null
                && System.getProperty("log4j.configurationFile") == null) {
            System.setProperty("log4j2.configurationFile", "classpath:" + CONFIG_RESOURCE);
        }
    }

    /** The root level for -v counts: 0 keeps the configuration's, 1 INFO, 2 DEBUG, 3 or more TRACE. */
    static Level level(int verbosity) {
        return switch (Math.max(0, Math.min(verbosity, 3))) {
            case 0 -> null;
            case 1 -> Level.INFO;
            case 2 -> Level.DEBUG;
            default -> Level.TRACE;
        };
    }

    /**
     * Raises the root level for -v. Log4j may already be running by now (a command class may hold a static
     * logger), so the level is set on the live configuration. log4j-core is a runtime dependency only,
     * hence the one reflective call; without it (another Log4j implementation) that one's setup decides.
     */
    static void verbosity(int verbosity) {
        Level level = level(verbosity);
        if (level == null) {
            return;
        }
        try {
            Class.forName(CONFIGURATOR).getMethod("setRootLevel", Level.class).invoke(null, level);
        } catch (ReflectiveOperationException | LinkageError e) {
            // not log4j-core: nothing to adjust
        }
    }
}
