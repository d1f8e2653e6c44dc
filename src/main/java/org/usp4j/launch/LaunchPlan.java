package org.usp4j.launch;

import static org.usp4j.launch.LaunchEnvironment.LOCAL_RANK;
import static org.usp4j.launch.LaunchEnvironment.LOCAL_WORLD_SIZE;
import static org.usp4j.launch.LaunchEnvironment.MASTER_ADDR;
import static org.usp4j.launch.LaunchEnvironment.MASTER_PORT;
import static org.usp4j.launch.LaunchEnvironment.RANK;
import static org.usp4j.launch.LaunchEnvironment.USP4J_LOCAL_RANK;
import static org.usp4j.launch.LaunchEnvironment.USP4J_LOCAL_WORLD_SIZE;
import static org.usp4j.launch.LaunchEnvironment.USP4J_MASTER_ADDR;
import static org.usp4j.launch.LaunchEnvironment.USP4J_MASTER_PORT;
import static org.usp4j.launch.LaunchEnvironment.USP4J_NNODES;
import static org.usp4j.launch.LaunchEnvironment.USP4J_NODE_RANK;
import static org.usp4j.launch.LaunchEnvironment.USP4J_RANK;
import static org.usp4j.launch.LaunchEnvironment.USP4J_TIMEOUT;
import static org.usp4j.launch.LaunchEnvironment.USP4J_TOKEN;
import static org.usp4j.launch.LaunchEnvironment.USP4J_WORLD_SIZE;
import static org.usp4j.launch.LaunchEnvironment.WORLD_SIZE;

import java.time.Duration;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * What {@code usp4j launch} starts on this node: {@code nprocPerNode} copies of {@code command}, local rank
 * l getting global rank {@code nodeRank * nprocPerNode + l} and the environment of {@link #rankEnvironment}.
 * Invalid values are refused with messages that name the launcher's options.
 *
 * @param nprocPerNode processes on this node
 * @param nnodes       nodes in the job, each running its own launcher with the same options but its node rank
 * @param nodeRank     this node's index, in [0, nnodes)
 * @param masterAddr   host of node 0, where rank 0 hosts the rendezvous store
 * @param masterPort   the store's port; 0 lets a single-node launch pick a free one
 * @param token        the job's shared secret, the same on every node
 * @param timeout      exported as USP4J_TIMEOUT (how long ranks wait for each other); null leaves it alone
 * @param gracePeriod  how long ranks may take to stop after SIGTERM before they are killed
 * @param command      the program and its arguments
 */
public record LaunchPlan(int nprocPerNode, int nnodes, int nodeRank, String masterAddr, int masterPort, String token,
                         Duration timeout, Duration gracePeriod, List<String> command) {

    /** Upper bound on processes per node: far above any GPU count, low enough to catch typos. */
    public static final int MAX_NPROC_PER_NODE = 1024;

    private static final Pattern HOST = Pattern.compile("[A-Za-z0-9._:\\-\\[\\]%]{1,253}");

    public LaunchPlan {
        Objects.requireNonNull(masterAddr, "masterAddr");
        Objects.requireNonNull(token, "token");
        Objects.requireNonNull(gracePeriod, "gracePeriod");
        Objects.requireNonNull(command, "command");
        command = List.copyOf(command);
        if (nprocPerNode < 1 || nprocPerNode > MAX_NPROC_PER_NODE) {
            throw new IllegalArgumentException("--nproc-per-node must be in [1, " + MAX_NPROC_PER_NODE + "], got "
                    + nprocPerNode);
        }
        if (nnodes < 1) {
            throw new IllegalArgumentException("--nnodes must be at least 1, got " + nnodes);
        }
        if ((long) nnodes * nprocPerNode > Integer.MAX_VALUE) {
            throw new IllegalArgumentException("--nnodes " + nnodes + " x --nproc-per-node " + nprocPerNode
                    + " ranks is too many");
        }
        if (nodeRank < 0 || nodeRank >= nnodes) {
            throw new IllegalArgumentException("--node-rank must be in [0, " + nnodes + ") for --nnodes " + nnodes
                    + ", got " + nodeRank);
        }
        if (!HOST.matcher(masterAddr).matches()) {
            throw new IllegalArgumentException("--master-addr '" + masterAddr + "' is not a host name or address");
        }
        if (masterPort < 0 || masterPort > 65_535) {
            throw new IllegalArgumentException("--master-port must be in [1, 65535], got " + masterPort);
        }
        if (masterPort == 0 && nnodes > 1) {
            throw new IllegalArgumentException("--master-port is required with --nnodes " + nnodes
                    + " (every node must name the same port)");
        }
        if (token.isBlank()) {
            throw new IllegalArgumentException("the job token must not be blank");
        }
        if (timeout != null && (timeout.isNegative() || timeout.isZero())) {
            throw new IllegalArgumentException("--timeout must be positive, got " + seconds(timeout) + " s");
        }
        if (gracePeriod.isNegative()) {
            throw new IllegalArgumentException("--grace must not be negative, got " + seconds(gracePeriod) + " s");
        }
        if (command.isEmpty() || command.get(0).isBlank()) {
            throw new IllegalArgumentException("no command to launch (usage: usp4j launch [options] -- <command...>)");
        }
    }

    public int worldSize() {
        return nnodes * nprocPerNode;
    }

    /** The global rank of this node's local rank {@code localRank}. */
    public int globalRank(int localRank) {
        Objects.checkIndex(localRank, nprocPerNode);
        return nodeRank * nprocPerNode + localRank;
    }

    /**
     * The variables local rank {@code localRank} gets on top of the launcher's environment, with the store
     * on {@code port} (the chosen one when {@link #masterPort} is 0): usp4j's USP4J_* set, and the
     * torchrun-style RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT for programs
     * that read those.
     */
    public Map<String, String> rankEnvironment(int localRank, int port) {
        int rank = globalRank(localRank);
        Map<String, String> env = new LinkedHashMap<>();
        env.put(USP4J_RANK, Integer.toString(rank));
        env.put(USP4J_WORLD_SIZE, Integer.toString(worldSize()));
        env.put(USP4J_LOCAL_RANK, Integer.toString(localRank));
        env.put(USP4J_LOCAL_WORLD_SIZE, Integer.toString(nprocPerNode));
        env.put(USP4J_MASTER_ADDR, masterAddr);
        env.put(USP4J_MASTER_PORT, Integer.toString(port));
        env.put(USP4J_NODE_RANK, Integer.toString(nodeRank));
        env.put(USP4J_NNODES, Integer.toString(nnodes));
        env.put(USP4J_TOKEN, token);
        if (timeout != null) {
            env.put(USP4J_TIMEOUT, seconds(timeout));
        }
        env.put(RANK, Integer.toString(rank));
        env.put(WORLD_SIZE, Integer.toString(worldSize()));
        env.put(LOCAL_RANK, Integer.toString(localRank));
        env.put(LOCAL_WORLD_SIZE, Integer.toString(nprocPerNode));
        env.put(MASTER_ADDR, masterAddr);
        env.put(MASTER_PORT, Integer.toString(port));
        return env;
    }

    /** Never shows the token. */
    @Override
    public String toString() {
        return "LaunchPlan[" + nprocPerNode + " per node, node " + nodeRank + " of " + nnodes + ", store " + masterAddr
                + ":" + (masterPort == 0 ? "auto" : masterPort) + ", command " + command + "]";
    }

    private static String seconds(Duration d) {
        return java.math.BigDecimal.valueOf(d.toMillis()).movePointLeft(3).stripTrailingZeros().toPlainString();
    }
}
