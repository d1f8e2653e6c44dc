package org.usp4j.cli;

import java.io.PrintWriter;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import org.usp4j.launch.LaunchEnvironment;
import org.usp4j.launch.LaunchOutcome;
import org.usp4j.launch.LaunchPlan;
import org.usp4j.launch.ProcessLauncher;
import org.usp4j.launch.store.Tokens;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.ParameterException;
import picocli.CommandLine.Spec;

/**
 * {@code usp4j launch}: starts one process per GPU on this node with its rank environment (see
 * {@link LaunchEnvironment}), prefixes their output with {@code [rank k]}, and fails (exit 1, naming the
 * rank and its exit code, as a {@link CommandFailure}) as soon as one of them fails, after stopping the
 * others. Usage errors exit 2.
 */
@Command(name = "launch",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        sortOptions = false,
        usageHelpAutoWidth = true,
        modelTransformer = LaunchCommand.CommandStartsAtFirstPositional.class,
        description = {
            "Start N processes on this node, one per GPU, each with its rank environment (USP4J_RANK, "
                + "USP4J_WORLD_SIZE, USP4J_LOCAL_RANK, ..., and torchrun's RANK, WORLD_SIZE, LOCAL_RANK, "
                + "MASTER_ADDR, MASTER_PORT); global rank = node rank x N + local rank. Rank 0 hosts the "
                + "rendezvous store on the master address and port.",
            "Output lines are prefixed with [rank k]. When a process fails, the others are stopped "
                + "(SIGTERM, SIGKILL after the grace period) and launch exits 1. Ctrl-C and SIGTERM stop them too.",
            "Multi-node: run the same command on every node with --nnodes, its own --node-rank, the same "
                + "--master-addr (node 0) and --master-port, and the same USP4J_TOKEN exported on each."})
public final class LaunchCommand implements Callable<Integer> {

    /** Everything after the first positional parameter belongs to the launched command, options included. */
    static final class CommandStartsAtFirstPositional implements CommandLine.IModelTransformer {
        @Override
        public CommandSpec transform(CommandSpec spec) {
            spec.parser().stopAtPositional(true);
            return spec;
        }
    }

    @Spec
    CommandSpec spec;

    @Option(names = {"--nproc-per-node", "--nproc_per_node"}, required = true, paramLabel = "N",
            description = "Processes to start on this node (one per GPU).")
    int nprocPerNode;

    @Option(names = "--nnodes", paramLabel = "M", defaultValue = "1",
            description = "Nodes in the job (default: ${DEFAULT-VALUE}).")
    int nnodes;

    @Option(names = {"--node-rank", "--node_rank"}, paramLabel = "K", defaultValue = "0",
            description = "This node's index in [0, M) (default: ${DEFAULT-VALUE}).")
    int nodeRank;

    @Option(names = {"--master-addr", "--master_addr"}, paramLabel = "HOST",
            description = "Host of node 0, where rank 0 hosts the store (default: 127.0.0.1 for one node; "
                    + "required for several).")
    String masterAddr;

    @Option(names = {"--master-port", "--master_port"}, paramLabel = "P",
            description = "The store's port (default: a free port for one node; required for several).")
    Integer masterPort;

    @Option(names = "--timeout", paramLabel = "S",
            description = "Seconds ranks wait for each other at rendezvous and in collectives before failing "
                    + "(exported as USP4J_TIMEOUT; default: inherited, else "
                    + LaunchEnvironment.DEFAULT_TIMEOUT_SECONDS + ").")
    Double timeoutSeconds;

    @Option(names = "--grace", paramLabel = "S", defaultValue = "10",
            description = "Seconds a process may take to stop after SIGTERM before it is killed (default: "
                    + "${DEFAULT-VALUE}).")
    double graceSeconds;

    @Parameters(paramLabel = "COMMAND", arity = "1..*",
            description = "The program to start and its arguments, e.g. ./usp4j attention ... (put -- before it "
                    + "if it starts with '-').")
    List<String> command;

    @Override
    public Integer call() throws InterruptedException {
        LaunchPlan plan = plan();
        PrintWriter out = spec.commandLine().getOut();
        PrintWriter err = spec.commandLine().getErr();
        LaunchOutcome outcome = new ProcessLauncher(plan, out, err).run();
        if (!outcome.succeeded()) {
            throw new CommandFailure(outcome.failure());
        }
        return ExitCodes.OK;
    }

    /** The plan from the options and USP4J_TOKEN; usage errors name the options. */
    LaunchPlan plan() {
        List<String> args = spec.commandLine().getParseResult().originalArgs();
        int start = args.size() - command.size();
        if (command.get(0).startsWith("-") && (start == 0 || !args.get(start - 1).equals("--"))) {
            // a mistyped launcher option would otherwise become the command; '--' says it is meant
            throw usage("Unknown option: '" + command.get(0) + "' (put -- before a command that starts with '-')");
        }
        if (nnodes > 1 && masterAddr == null) {
            throw usage("--master-addr is required with --nnodes " + nnodes + " (the host of node 0)");
        }
        if (nnodes > 1 && masterPort == null) {
            throw usage("--master-port is required with --nnodes " + nnodes + " (the same on every node)");
        }
        if (masterPort != null && (masterPort < 1 || masterPort > 65_535)) {
            throw usage("--master-port must be in [1, 65535], got " + masterPort);
        }
        String token = System.getenv(LaunchEnvironment.USP4J_TOKEN);
        if (token == null || token.isBlank()) {
            if (nnodes > 1) {
                throw usage("--nnodes " + nnodes + " needs the same secret on every node: export "
                        + LaunchEnvironment.USP4J_TOKEN + "=<secret> (e.g. $(openssl rand -hex 16)) on each node "
                        + "before usp4j launch");
            }
            token = Tokens.generate();
        }
        try {
            return new LaunchPlan(nprocPerNode, nnodes, nodeRank, masterAddr == null ? "127.0.0.1" : masterAddr,
                    masterPort == null ? 0 : masterPort, token, timeoutSeconds == null ? null
                    : seconds("--timeout", timeoutSeconds), seconds("--grace", graceSeconds), command);
        } catch (IllegalArgumentException e) {
            throw usage(e.getMessage());
        }
    }

    private Duration seconds(String option, double s) {
        if (Double.isNaN(s) || Double.isInfinite(s) || s > 7 * 24 * 3600) {
            throw usage(option + " must be a number of seconds up to 604800, got " + s);
        }
        if (s < 0 || (s == 0 && option.equals("--timeout"))) {
            throw usage(option + " must be " + (option.equals("--timeout") ? "positive" : "non-negative") + ", got " + s);
        }
        return Duration.ofMillis(Math.round(s * 1000));
    }

    private ParameterException usage(String message) {
        return new ParameterException(spec.commandLine(), message);
    }
}
