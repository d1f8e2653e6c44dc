package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** The conventions every command shares: help, version, usage errors, --debug. */
class MainTest {

    @TempDir
    Path dir;

    @ParameterizedTest
    @ValueSource(strings = {"--help", "-h", "help"})
    void helpListsTheCommandsAndExitsZero(String flag) {
        Cli.Result r = Cli.run(flag);
        r.assertOk();
        assertTrue(r.out().contains("Usage: usp4j"), r.out());
        assertTrue(r.out().contains("attention"), r.out());
        assertTrue(r.out().contains("random-input"), r.out());
    }

    @ParameterizedTest
    @ValueSource(strings = {"attention", "random-input"})
    void everyCommandHasHelpAndVersion(String command) {
        Cli.Result help = Cli.run(command, "--help");
        help.assertOk();
        assertTrue(help.out().startsWith("Usage: usp4j " + command), help.out());
        Cli.Result viaHelp = Cli.run("help", command);
        viaHelp.assertOk();
        assertEquals(help.out(), viaHelp.out());
        Cli.Result version = Cli.run(command, "--version");
        version.assertOk();
        assertTrue(version.out().startsWith("usp4j "), version.out());
    }

    @Test
    void versionNamesUsp4jAndTheJdk() {
        Cli.Result r = Cli.run("--version");
        r.assertOk();
        List<String> lines = r.out().lines().toList();
        assertTrue(lines.get(0).matches("usp4j \\S+"), lines.get(0));
        assertTrue(lines.get(1).startsWith("JDK " + Runtime.version().feature()), lines.get(1));
    }

    @Test
    void noCommandIsAUsageError() {
        String line = Cli.run().assertOneErrorLine(ExitCodes.USAGE);
        assertTrue(line.contains("missing command") && line.contains("attention"), line);
    }

    @Test
    void unknownCommandsAndOptionsAreUsageErrors() {
        String line = Cli.run("frobnicate").assertOneErrorLine(ExitCodes.USAGE);
        assertTrue(line.contains("'frobnicate'"), line);
        line = Cli.run("--frobnicate").assertOneErrorLine(ExitCodes.USAGE);
        assertTrue(line.contains("'--frobnicate'"), line);
    }

    @Test
    void debugAddsTheStackTraceInEitherPosition() {
        String missing = dir.resolve("absent.safetensors").toString();
        String out = dir.resolve("out.safetensors").toString();
        Cli.Result plain = Cli.run("attention", "--input", missing, "--output", out);
        plain.assertOneErrorLine(ExitCodes.FAILURE);
        for (List<String> args : List.of(
                List.of("--debug", "attention", "--input", missing, "--output", out),
                List.of("attention", "--debug", "--input", missing, "--output", out))) {
            Cli.Result r = Cli.run(args.toArray(String[]::new));
            assertEquals(ExitCodes.FAILURE, r.exitCode());
            List<String> lines = r.errLines();
            assertEquals(plain.errLines().get(0), lines.get(0));
            assertTrue(lines.size() > 3 && lines.get(1).contains("NoSuchFileException"), r.err());
            assertTrue(lines.stream().anyMatch(l -> l.contains("at org.usp4j.io.SafetensorsFile.open")), r.err());
        }
    }

    @Test
    void verboseIsAcceptedOnEveryCommandAndNeedsNoValue() {
        Path file = dir.resolve("in.safetensors");
        Cli.Result r = Cli.run("-v", "random-input", "--seq", "8", "--heads", "2", "--head-dim", "4",
                "--output", file.toString());
        assertEquals(0, r.exitCode(), r.err());
        r = Cli.run("random-input", "-vv", "--seq", "8", "--heads", "2", "--head-dim", "4", "--output", file.toString());
        assertEquals(0, r.exitCode(), r.err());
    }

    @Test
    void errorMessagesAreFlattenedToOneLine() {
        assertEquals("a b c", ErrorReporter.oneLine("a\n  b\r\nc\n"));
        assertEquals("no such file or directory: x",
                ErrorReporter.describe(new java.nio.file.NoSuchFileException("x")));
        assertTrue(ErrorReporter.describe(new NullPointerException("boom")).startsWith("internal error: "));
    }
}
