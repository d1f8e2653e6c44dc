package org.usp4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.file.AccessDeniedException;
import java.nio.file.FileSystemException;
import java.nio.file.NoSuchFileException;
import java.nio.file.NotDirectoryException;
import java.util.function.BooleanSupplier;
import picocli.CommandLine;
import picocli.CommandLine.IExecutionExceptionHandler;
import picocli.CommandLine.IParameterExceptionHandler;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ParseResult;

/**
 * Turns every failure into exactly one {@code error: ...} line on stderr and an exit status: usage
 * errors exit 2, everything else 1. Stack traces follow the line only with {@code --debug}, so scripts
 * that read stderr see one line per failure.
 */
final class ErrorReporter implements IParameterExceptionHandler, IExecutionExceptionHandler {

    private final BooleanSupplier debug;

    ErrorReporter(BooleanSupplier debug) {
        this.debug = debug;
    }

    @Override
    public int handleParseException(ParameterException ex, String[] args) {
        CommandLine cmd = ex.getCommandLine();
        String help = cmd.getCommandSpec().qualifiedName() + " --help";
        report(cmd.getErr(), oneLine(ex.getMessage()) + " (see '" + help + "')", ex);
        return ExitCodes.USAGE;
    }

    @Override
    public int handleExecutionException(Exception ex, CommandLine cmd, ParseResult parseResult) {
        int code = ex instanceof CommandFailure f ? f.exitCode() : ExitCodes.FAILURE;
        report(cmd.getErr(), describe(ex), ex);
        return code;
    }

    private void report(PrintWriter err, String message, Throwable ex) {
        err.println("error: " + message);
        if (debug.getAsBoolean()) {
            ex.printStackTrace(err);
        }
        err.flush();
    }

    /** One line that says what went wrong, in the user's terms rather than the exception's class. */
    static String describe(Throwable ex) {
        Throwable t = ex instanceof UncheckedIOException u && u.getCause() != null ? u.getCause() : ex;
        String message = switch (t) {
            case CommandFailure f -> f.getMessage();
            case NoSuchFileException e -> "no such file or directory: " + e.getFile();
            case AccessDeniedException e -> "permission denied: " + e.getFile();
            case NotDirectoryException e -> "not a directory: " + e.getFile();
            case FileSystemException e -> e.getFile() + ": " + (e.getReason() != null ? e.getReason() : e.getMessage());
            case IOException e -> e.getMessage() != null ? e.getMessage() : e.toString();
            case IllegalArgumentException e -> e.getMessage() != null ? e.getMessage() : e.toString();
            case OutOfMemoryError e -> "out of memory (" + e.getMessage()
                    + "); give the JVM more, e.g. USP4J_JAVA_OPTS=-Xmx8g";
            default -> "internal error: " + t + " (run with --debug for the stack trace)";
        };
        return oneLine(message);
    }

    static String oneLine(String s) {
        return s == null ? "" : s.replaceAll("\\s*\\R\\s*", " ").strip();
    }
}
