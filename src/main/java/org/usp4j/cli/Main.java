package org.usp4j.cli;

import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.concurrent.Callable;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.ScopeType;
import picocli.CommandLine.Spec;

/**
 * The {@code usp4j} command. Every subcommand follows the same conventions: exit 0 on success, 2 for bad
 * usage, 1 for bad input or a failure while running, with exactly one {@code error: ...} line on stderr
 * (a stack trace follows only with {@code --debug}); {@code --help} and {@code --version} everywhere;
 * results on stdout, logs and progress on stderr.
 *
 * <p>New commands join by being listed in {@code subcommands} below. A command is a picocli
 * {@code Callable<Integer>} with {@code mixinStandardHelpOptions} and {@link VersionProvider}; it throws
 * picocli's {@code ParameterException} for option values out of range (exit 2), {@link CommandFailure} for
 * bad input (exit 1, its message is the error line), and lets other exceptions through (exit 1, one line);
 * it prints results to {@code spec.commandLine().getOut()} and progress through {@link StatusLine}, which
 * stays silent unless stderr is a terminal.
 */
@Command(name = "usp4j",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        description = "Sequence-parallel attention (Ulysses, Ring, USP) for the JVM.",
        subcommands = {DemoCommand.class, BenchCommand.class, InfoCommand.class, AttentionCommand.class, RandomInputCommand.class,
            PlanCommand.class,
            LaunchCommand.class, CommandLine.HelpCommand.class},
        sortOptions = false,
        usageHelpAutoWidth = true)
public final class Main implements Callable<Integer> {

    @Spec
    CommandSpec spec;

    @Option(names = {"-v", "--verbose"}, scope = ScopeType.INHERIT,
            description = "Log more to stderr: -v info, -vv debug, -vvv trace (default: warnings only).")
    boolean[] verbose = new boolean[0];

    @Option(names = "--debug", scope = ScopeType.INHERIT,
            description = "Print stack traces after error messages.")
    boolean debug;

    /** Runs the command line and exits the JVM with its status. */
    public static void main(String[] args) {
        CliLogging.install();
        PrintWriter out = new PrintWriter(System.out, true, StandardCharsets.UTF_8);
        PrintWriter err = new PrintWriter(System.err, true, StandardCharsets.UTF_8);
        int code = run(out, err, args);
        out.flush();
        err.flush();
        System.exit(code);
    }

    /** Runs one command line in this JVM and returns its exit status; never exits. */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        return commandLine(out, err).execute(args);
    }

    /** The configured command line (output streams, error handling, logging levels), for embedding and tests. */
    public static CommandLine commandLine(PrintWriter out, PrintWriter err) {
        Main main = new Main();
        CommandLine cl = new CommandLine(main);
        ErrorReporter errors = new ErrorReporter(() -> main.debug);
        cl.setOut(out);
        cl.setErr(err);
        cl.setParameterExceptionHandler(errors);
        cl.setExecutionExceptionHandler(errors);
        cl.setExecutionStrategy(parseResult -> {
            // after parsing, before any command runs (and so before the first logger is made)
            CliLogging.verbosity(main.verbose.length);
            return new CommandLine.RunLast().execute(parseResult);
        });
        return cl;
    }

    @Override
    public Integer call() {
        throw new ParameterException(spec.commandLine(), "missing command: one of "
                + String.join(", ", spec.subcommands().keySet().stream().filter(n -> !n.equals("help")).toList()));
    }
}
