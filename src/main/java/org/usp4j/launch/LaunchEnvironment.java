package org.usp4j.launch;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * Where this process stands in a multi-process job, read from the environment its launcher set: its
 * global and node-local rank, the sizes, where rank 0 hosts the rendezvous store, the job's token and the
 * time ranks wait for each other.
 *
 * <p>{@link #detect} recognises, in this order (the innermost launcher wins: torchrun or mpirun started
 * inside a Slurm allocation still see the allocation's SLURM_* variables):
 * <ol>
 * <li>{@code usp4j launch}: USP4J_RANK, USP4J_WORLD_SIZE, USP4J_LOCAL_RANK, USP4J_LOCAL_WORLD_SIZE,
 *     USP4J_MASTER_ADDR, USP4J_MASTER_PORT (the store's port), all required;</li>
 * <li>torchrun: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT, all required.
 *     torchrun's own agent store holds MASTER_PORT, so usp4j's store uses MASTER_PORT + 1;</li>
 * <li>Open MPI mpirun: OMPI_COMM_WORLD_RANK, _SIZE, _LOCAL_RANK, _LOCAL_SIZE. The store's address is
 *     MASTER_ADDR and MASTER_PORT (pass them with {@code mpirun -x}); on a single node they default to
 *     127.0.0.1 and {@value #DEFAULT_PORT};</li>
 * <li>Slurm srun: SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID, and SLURM_STEP_TASKS_PER_NODE (with
 *     SLURM_NODEID) for the tasks on this node. The store is at MASTER_ADDR and MASTER_PORT when they are
 *     set (recommended: {@code export MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n1)});
 *     otherwise the first host of SLURM_STEP_NODELIST (where srun puts task 0 under its block and cyclic
 *     distributions) and port 10000 + SLURM_JOB_ID % 20000. A batch script itself, which has SLURM_PROCID
 *     but no SLURM_STEP_NUM_TASKS, is not a rank: it counts as no launcher;</li>
 * <li>none of these: a single process, rank 0 of 1, store on 127.0.0.1 with an ephemeral port.</li>
 * </ol>
 * For every source, USP4J_TOKEN is the job's shared secret (set by {@code usp4j launch}; export it yourself
 * for the other launchers), USP4J_TIMEOUT the wait in seconds (default {@value #DEFAULT_TIMEOUT_SECONDS}),
 * and USP4J_STORE_PORT, when set, overrides the store's port. Empty values count as unset. A partial or
 * inconsistent set of variables is an {@link IllegalArgumentException} that names them.
 *
 * @param rank           this process's global rank, in [0, worldSize)
 * @param worldSize      number of processes in the job
 * @param localRank      rank among the processes on this node (selects the GPU), in [0, localWorldSize)
 * @param localWorldSize processes on this node
 * @param masterAddr     host of rank 0, where the store listens
 * @param storePort      the store's port (0: ephemeral, only for a world of one)
 * @param token          the job's shared secret, or "" when none was set (see {@link #requireToken()})
 * @param timeout        how long ranks wait for each other at rendezvous and in collectives
 * @param source         which launcher's variables these came from
 */
public record LaunchEnvironment(int rank, int worldSize, int localRank, int localWorldSize, String masterAddr,
                                int storePort, String token, Duration timeout, LaunchSource source) {

    public static final String USP4J_RANK = "USP4J_RANK";
    public static final String USP4J_WORLD_SIZE = "USP4J_WORLD_SIZE";
    public static final String USP4J_LOCAL_RANK = "USP4J_LOCAL_RANK";
    public static final String USP4J_LOCAL_WORLD_SIZE = "USP4J_LOCAL_WORLD_SIZE";
    public static final String USP4J_MASTER_ADDR = "USP4J_MASTER_ADDR";
    public static final String USP4J_MASTER_PORT = "USP4J_MASTER_PORT";
    /** Informational, set by {@code usp4j launch}: this node's index and the number of nodes. */
    public static final String USP4J_NODE_RANK = "USP4J_NODE_RANK";
    public static final String USP4J_NNODES = "USP4J_NNODES";
    public static final String USP4J_TOKEN = "USP4J_TOKEN";
    public static final String USP4J_TIMEOUT = "USP4J_TIMEOUT";
    public static final String USP4J_STORE_PORT = "USP4J_STORE_PORT";

    public static final String RANK = "RANK";
    public static final String WORLD_SIZE = "WORLD_SIZE";
    public static final String LOCAL_RANK = "LOCAL_RANK";
    public static final String LOCAL_WORLD_SIZE = "LOCAL_WORLD_SIZE";
    public static final String MASTER_ADDR = "MASTER_ADDR";
    public static final String MASTER_PORT = "MASTER_PORT";

    public static final String OMPI_RANK = "OMPI_COMM_WORLD_RANK";
    public static final String OMPI_SIZE = "OMPI_COMM_WORLD_SIZE";
    public static final String OMPI_LOCAL_RANK = "OMPI_COMM_WORLD_LOCAL_RANK";
    public static final String OMPI_LOCAL_SIZE = "OMPI_COMM_WORLD_LOCAL_SIZE";

    public static final String SLURM_PROCID = "SLURM_PROCID";
    public static final String SLURM_STEP_NUM_TASKS = "SLURM_STEP_NUM_TASKS";
    public static final String SLURM_LOCALID = "SLURM_LOCALID";
    public static final String SLURM_NODEID = "SLURM_NODEID";
    public static final String SLURM_STEP_TASKS_PER_NODE = "SLURM_STEP_TASKS_PER_NODE";
    public static final String SLURM_STEP_NODELIST = "SLURM_STEP_NODELIST";
    public static final String SLURM_JOB_ID = "SLURM_JOB_ID";

    /** Wait used when USP4J_TIMEOUT is unset. */
    public static final long DEFAULT_TIMEOUT_SECONDS = 300;
    /** Store port for a single-node mpirun without MASTER_PORT (torch's customary default). */
    public static final int DEFAULT_PORT = 29500;

    private static final long MAX_TIMEOUT_SECONDS = 7L * 24 * 3600;
    private static final Pattern HOST = Pattern.compile("[A-Za-z0-9._:\\-\\[\\]%]{1,253}");
    private static final Pattern TASKS_PER_NODE = Pattern.compile("(\\d+)(?:\\(x(\\d+)\\))?");

    public LaunchEnvironment {
        Objects.requireNonNull(masterAddr, "masterAddr");
        Objects.requireNonNull(token, "token");
        Objects.requireNonNull(timeout, "timeout");
        Objects.requireNonNull(source, "source");
        if (worldSize < 1) {
            throw new IllegalArgumentException("world size must be at least 1, got " + worldSize);
        }
        if (rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank " + rank + " is not in [0, " + worldSize + ")");
        }
        if (localWorldSize < 1 || localWorldSize > worldSize) {
            throw new IllegalArgumentException("local world size " + localWorldSize + " is not in [1, " + worldSize
                    + "]");
        }
        if (localRank < 0 || localRank >= localWorldSize) {
            throw new IllegalArgumentException("local rank " + localRank + " is not in [0, " + localWorldSize + ")");
        }
        if (!HOST.matcher(masterAddr).matches()) {
            throw new IllegalArgumentException("master address '" + masterAddr + "' is not a host name or address");
        }
        if (storePort < 0 || storePort > 65_535 || (storePort == 0 && worldSize > 1)) {
            throw new IllegalArgumentException("store port " + storePort + " is not in [" + (worldSize > 1 ? 1 : 0)
                    + ", 65535]");
        }
        if (timeout.isNegative() || timeout.isZero()) {
            throw new IllegalArgumentException("timeout must be positive, got " + timeout);
        }
    }

    /** A world of one: no launcher, store on 127.0.0.1 with an ephemeral port, no token. */
    public static LaunchEnvironment single() {
        return new LaunchEnvironment(0, 1, 0, 1, "127.0.0.1", 0, "", Duration.ofSeconds(DEFAULT_TIMEOUT_SECONDS),
                LaunchSource.NONE);
    }

    /** {@link #detect(Map)} of this process's environment. */
    public static LaunchEnvironment detect() {
        return detect(System.getenv());
    }

    /**
     * Reads the rank and world from {@code env} (see the class comment for the conventions and their order).
     *
     * @throws IllegalArgumentException naming the variables when a convention is present but partial,
     *                                  malformed or inconsistent
     */
    public static LaunchEnvironment detect(Map<String, String> env) {
        Vars v = new Vars(env);
        String token = v.get(USP4J_TOKEN) == null ? "" : v.get(USP4J_TOKEN);
        Duration timeout = timeout(v);
        if (v.anySet(USP4J_RANK, USP4J_WORLD_SIZE, USP4J_LOCAL_RANK, USP4J_LOCAL_WORLD_SIZE, USP4J_MASTER_ADDR,
                USP4J_MASTER_PORT)) {
            v.requireAll(LaunchSource.USP4J, USP4J_RANK, USP4J_WORLD_SIZE, USP4J_LOCAL_RANK, USP4J_LOCAL_WORLD_SIZE,
                    USP4J_MASTER_ADDR, USP4J_MASTER_PORT);
            return build(v, LaunchSource.USP4J, USP4J_RANK, USP4J_WORLD_SIZE, USP4J_LOCAL_RANK,
                    v.integer(USP4J_LOCAL_WORLD_SIZE), USP4J_LOCAL_WORLD_SIZE, v.get(USP4J_MASTER_ADDR),
                    USP4J_MASTER_ADDR, storePort(v, v.port(USP4J_MASTER_PORT), USP4J_MASTER_PORT), token, timeout);
        }
        if (v.anySet(RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE)) {
            v.requireAll(LaunchSource.TORCHRUN, RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR,
                    MASTER_PORT);
            int masterPort = v.port(MASTER_PORT);
            if (masterPort == 65_535 && v.get(USP4J_STORE_PORT) == null) {
                throw new IllegalArgumentException("MASTER_PORT=65535 leaves no port for usp4j's store (it uses "
                        + "MASTER_PORT + 1 beside torchrun's own store); set USP4J_STORE_PORT");
            }
            return build(v, LaunchSource.TORCHRUN, RANK, WORLD_SIZE, LOCAL_RANK, v.integer(LOCAL_WORLD_SIZE),
                    LOCAL_WORLD_SIZE, v.get(MASTER_ADDR), MASTER_ADDR,
                    storePort(v, masterPort + 1, MASTER_PORT + "+1"), token, timeout);
        }
        if (v.anySet(OMPI_RANK, OMPI_SIZE, OMPI_LOCAL_RANK, OMPI_LOCAL_SIZE)) {
            v.requireAll(LaunchSource.OPEN_MPI, OMPI_RANK, OMPI_SIZE, OMPI_LOCAL_RANK, OMPI_LOCAL_SIZE);
            int size = v.integer(OMPI_SIZE);
            int localSize = v.integer(OMPI_LOCAL_SIZE);
            String addr = v.get(MASTER_ADDR);
            if (addr == null && localSize != size) {
                throw new IllegalArgumentException("mpirun (Open MPI) started " + OMPI_SIZE + "=" + size
                        + " ranks on several nodes (" + OMPI_LOCAL_SIZE + "=" + localSize + " here) but MASTER_ADDR "
                        + "is not set: set MASTER_ADDR (rank 0's host) and MASTER_PORT and pass them with "
                        + "mpirun -x MASTER_ADDR -x MASTER_PORT");
            }
            int port = v.get(MASTER_PORT) != null ? v.port(MASTER_PORT) : DEFAULT_PORT;
            return build(v, LaunchSource.OPEN_MPI, OMPI_RANK, OMPI_SIZE, OMPI_LOCAL_RANK, localSize, OMPI_LOCAL_SIZE,
                    addr != null ? addr : "127.0.0.1", addr != null ? MASTER_ADDR : "(single node) 127.0.0.1",
                    storePort(v, port, MASTER_PORT), token, timeout);
        }
        if (v.anySet(SLURM_STEP_NUM_TASKS)) {
            v.requireAll(LaunchSource.SLURM, SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID);
            int tasks = v.integer(SLURM_STEP_NUM_TASKS);
            int localSize = slurmLocalSize(v);
            String addr = v.get(MASTER_ADDR);
            String addrFrom = MASTER_ADDR;
            if (addr == null) {
                if (v.get(SLURM_STEP_NODELIST) == null) {
                    throw new IllegalArgumentException("srun (Slurm): neither MASTER_ADDR nor " + SLURM_STEP_NODELIST
                            + " is set, so rank 0's host is unknown; export MASTER_ADDR");
                }
                addr = firstHost(v.get(SLURM_STEP_NODELIST));
                addrFrom = SLURM_STEP_NODELIST;
            }
            int port;
            if (v.get(MASTER_PORT) != null) {
                port = v.port(MASTER_PORT);
            } else if (v.get(SLURM_JOB_ID) != null) {
                port = 10_000 + (int) (v.number(SLURM_JOB_ID) % 20_000);
            } else {
                throw new IllegalArgumentException("srun (Slurm): neither MASTER_PORT nor " + SLURM_JOB_ID
                        + " is set, so the store's port is unknown; export MASTER_PORT");
            }
            if (tasks > 1 && localSize > tasks) {
                throw new IllegalArgumentException(SLURM_STEP_TASKS_PER_NODE + "=" + v.get(SLURM_STEP_TASKS_PER_NODE)
                        + " gives " + localSize + " tasks on this node, more than " + SLURM_STEP_NUM_TASKS + "="
                        + tasks);
            }
            return build(v, LaunchSource.SLURM, SLURM_PROCID, SLURM_STEP_NUM_TASKS, SLURM_LOCALID, localSize,
                    SLURM_STEP_TASKS_PER_NODE, addr, addrFrom, storePort(v, port, MASTER_PORT), token, timeout);
        }
        LaunchEnvironment single = single();
        int port = v.get(USP4J_STORE_PORT) != null ? v.port(USP4J_STORE_PORT) : 0;
        return new LaunchEnvironment(0, 1, 0, 1, single.masterAddr(), port, token, timeout, LaunchSource.NONE);
    }

    /** True when more than one process takes part. */
    public boolean isDistributed() {
        return worldSize > 1;
    }

    /** True when the job's token was set. */
    public boolean hasToken() {
        return !token.isEmpty();
    }

    /**
     * The job's token.
     *
     * @throws IllegalArgumentException when none was set, saying how to set one for this launcher
     */
    public String requireToken() {
        if (hasToken()) {
            return token;
        }
        throw new IllegalArgumentException(USP4J_TOKEN + " is not set: ranks started by " + source.description()
                + " need a shared secret for the rendezvous store; export one on every node before starting them, "
                + "e.g. export " + USP4J_TOKEN + "=$(openssl rand -hex 16)"
                + (source == LaunchSource.OPEN_MPI ? ", and pass it with mpirun -x " + USP4J_TOKEN : ""));
    }

    /** Never shows the token. */
    @Override
    public String toString() {
        return "LaunchEnvironment[rank " + rank + " of " + worldSize + ", local " + localRank + " of " + localWorldSize
                + ", store " + masterAddr + ":" + storePort + ", token " + (hasToken() ? "set" : "unset")
                + ", timeout " + timeout.toMillis() + " ms, from " + source.description() + "]";
    }

    // ---- parsing ----

    private static LaunchEnvironment build(Vars v, LaunchSource source, String rankVar, String sizeVar,
                                           String localRankVar, int localSize, String localSizeVar, String addr,
                                           String addrVar, int storePort, String token, Duration timeout) {
        int rank = v.integer(rankVar);
        int size = v.integer(sizeVar);
        int localRank = v.integer(localRankVar);
        String where = source.description() + ": ";
        if (size < 1) {
            throw new IllegalArgumentException(where + sizeVar + "=" + size + " must be at least 1");
        }
        if (rank < 0 || rank >= size) {
            throw new IllegalArgumentException(where + rankVar + "=" + rank + " is not in [0, " + sizeVar + "=" + size
                    + ")");
        }
        if (localSize < 1 || localSize > size) {
            throw new IllegalArgumentException(where + localSizeVar + " gives " + localSize
                    + " processes on this node, not in [1, " + sizeVar + "=" + size + "]");
        }
        if (localRank < 0 || localRank >= localSize) {
            throw new IllegalArgumentException(where + localRankVar + "=" + localRank + " is not in [0, " + localSize
                    + ") (" + localSizeVar + ")");
        }
        if (!HOST.matcher(addr).matches()) {
            throw new IllegalArgumentException(where + addrVar + "='" + addr + "' is not a host name or address");
        }
        return new LaunchEnvironment(rank, size, localRank, localSize, addr, storePort, token, timeout, source);
    }

    private static int storePort(Vars v, int port, String from) {
        if (v.get(USP4J_STORE_PORT) != null) {
            return v.port(USP4J_STORE_PORT);
        }
        if (port < 1 || port > 65_535) {
            throw new IllegalArgumentException(from + " gives store port " + port + ", not in [1, 65535]");
        }
        return port;
    }

    private static Duration timeout(Vars v) {
        String s = v.get(USP4J_TIMEOUT);
        if (s == null) {
            return Duration.ofSeconds(DEFAULT_TIMEOUT_SECONDS);
        }
        double seconds;
        try {
            seconds = Double.parseDouble(s);
        } catch (NumberFormatException e) {
            seconds = Double.NaN;
        }
        if (!(seconds > 0 && seconds <= MAX_TIMEOUT_SECONDS)) {
            throw new IllegalArgumentException(USP4J_TIMEOUT + "=" + s + " is not a number of seconds in (0, "
                    + MAX_TIMEOUT_SECONDS + "]");
        }
        return Duration.ofMillis(Math.max(1, Math.round(seconds * 1000)));
    }

    /** Tasks on this node: SLURM_STEP_TASKS_PER_NODE ("4(x2),3") expanded and indexed by SLURM_NODEID. */
    private static int slurmLocalSize(Vars v) {
        String spec = v.get(SLURM_STEP_TASKS_PER_NODE);
        if (spec == null) {
            throw new IllegalArgumentException("srun (Slurm): " + SLURM_STEP_TASKS_PER_NODE
                    + " is not set, so the number of tasks on this node is unknown");
        }
        List<Integer> perNode = new ArrayList<>();
        for (String part : spec.split(",")) {
            var m = TASKS_PER_NODE.matcher(part.trim());
            if (!m.matches()) {
                throw new IllegalArgumentException(SLURM_STEP_TASKS_PER_NODE + "=" + spec
                        + " is not a list like 4(x2),3");
            }
            int count = parseSmall(m.group(1), SLURM_STEP_TASKS_PER_NODE, spec);
            int repeat = m.group(2) == null ? 1 : parseSmall(m.group(2), SLURM_STEP_TASKS_PER_NODE, spec);
            for (int i = 0; i < repeat && perNode.size() <= 100_000; i++) {
                perNode.add(count);
            }
        }
        if (perNode.stream().distinct().count() == 1) {
            return perNode.get(0); // the same on every node: no need to know which node this is
        }
        if (v.get(SLURM_NODEID) == null) {
            throw new IllegalArgumentException(SLURM_STEP_TASKS_PER_NODE + "=" + spec + " differs between nodes and "
                    + SLURM_NODEID + " is not set");
        }
        int node = v.integer(SLURM_NODEID);
        if (node < 0 || node >= perNode.size()) {
            throw new IllegalArgumentException(SLURM_NODEID + "=" + node + " is not a node of "
                    + SLURM_STEP_TASKS_PER_NODE + "=" + spec);
        }
        return perNode.get(node);
    }

    private static int parseSmall(String digits, String var, String value) {
        try {
            return Integer.parseInt(digits);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException(var + "=" + value + " has a number out of range");
        }
    }

    /**
     * The first host of a Slurm host list: "gpu[003-010,012],cpu1" gives "gpu003", "rack[1-2]-n[01-04]"
     * gives "rack1-n01" (the first value of every bracket, zero padding kept).
     */
    static String firstHost(String hostList) {
        StringBuilder host = new StringBuilder();
        int i = 0;
        while (i < hostList.length()) {
            char c = hostList.charAt(i);
            if (c == ',') {
                break; // end of the first host expression
            }
            if (c == '[') {
                int close = hostList.indexOf(']', i);
                if (close < 0) {
                    throw new IllegalArgumentException("host list '" + hostList + "' has an unclosed '['");
                }
                String first = hostList.substring(i + 1, close).split("[,\\-]", 2)[0].trim();
                if (first.isEmpty() || !first.chars().allMatch(Character::isDigit)) {
                    throw new IllegalArgumentException("host list '" + hostList + "' has a bad range '"
                            + hostList.substring(i, close + 1) + "'");
                }
                host.append(first);
                i = close + 1;
            } else {
                host.append(c);
                i++;
            }
        }
        if (host.isEmpty()) {
            throw new IllegalArgumentException("host list '" + hostList + "' names no host");
        }
        return host.toString();
    }

    /** The environment with blank values treated as unset, and typed reads that name the variable. */
    private record Vars(Map<String, String> env) {

        String get(String name) {
            String s = env.get(name);
            return s == null || s.isBlank() ? null : s.strip();
        }

        boolean anySet(String... names) {
            for (String n : names) {
                if (get(n) != null) {
                    return true;
                }
            }
            return false;
        }

        void requireAll(LaunchSource source, String... names) {
            List<String> set = new ArrayList<>();
            List<String> unset = new ArrayList<>();
            for (String n : names) {
                (get(n) != null ? set : unset).add(n);
            }
            if (!unset.isEmpty()) {
                throw new IllegalArgumentException("partial " + source.description() + " environment: "
                        + String.join(", ", set) + (set.size() == 1 ? " is" : " are") + " set but "
                        + String.join(", ", unset) + (unset.size() == 1 ? " is" : " are")
                        + " not (" + source.description() + " sets all of " + String.join(", ", names) + ")");
            }
        }

        long number(String name) {
            String s = get(name);
            try {
                return Long.parseLong(s);
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(name + "=" + s + " is not an integer");
            }
        }

        int integer(String name) {
            long n = number(name);
            if (n < Integer.MIN_VALUE || n > Integer.MAX_VALUE) {
                throw new IllegalArgumentException(name + "=" + n + " is out of range");
            }
            return (int) n;
        }

        int port(String name) {
            long p = number(name);
            if (p < 1 || p > 65_535) {
                throw new IllegalArgumentException(name + "=" + p + " is not a port in [1, 65535]");
            }
            return (int) p;
        }
    }
}
