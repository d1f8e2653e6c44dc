package org.usp4j.launch;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.HashMap;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Rank and world detection for each launcher's convention, and refusal of partial or bad settings. */
class LaunchEnvironmentTest {

    private static Map<String, String> env(String... pairs) {
        Map<String, String> m = new HashMap<>();
        for (int i = 0; i < pairs.length; i += 2) {
            m.put(pairs[i], pairs[i + 1]);
        }
        return m;
    }

    private static String refused(Map<String, String> env) {
        return assertThrows(IllegalArgumentException.class, () -> LaunchEnvironment.detect(env)).getMessage();
    }

    @Test
    void noLauncherIsAWorldOfOne() {
        LaunchEnvironment e = LaunchEnvironment.detect(env("PATH", "/bin", "MASTER_ADDR", "somewhere"));
        assertEquals(new LaunchEnvironment(0, 1, 0, 1, "127.0.0.1", 0, "", Duration.ofSeconds(300), LaunchSource.NONE), e);
        assertFalse(e.isDistributed());
        assertEquals(LaunchSource.NONE, LaunchEnvironment.detect(env("RANK", " ", "WORLD_SIZE", "")).source(),
                "blank values count as unset");
    }

    @Test
    void usp4jLauncher() {
        LaunchEnvironment e = LaunchEnvironment.detect(env("USP4J_RANK", "5", "USP4J_WORLD_SIZE", "8",
                "USP4J_LOCAL_RANK", "1", "USP4J_LOCAL_WORLD_SIZE", "4", "USP4J_MASTER_ADDR", "node01",
                "USP4J_MASTER_PORT", "29400", "USP4J_TOKEN", "s3cret", "USP4J_TIMEOUT", "2.5",
                // a torchrun environment outside is overridden by the innermost launcher
                "RANK", "0", "WORLD_SIZE", "2"));
        assertEquals(new LaunchEnvironment(5, 8, 1, 4, "node01", 29400, "s3cret", Duration.ofMillis(2500),
                LaunchSource.USP4J), e);
        assertTrue(e.isDistributed());
        assertEquals("s3cret", e.requireToken());
        assertFalse(e.toString().contains("s3cret"), "toString must not show the token: " + e);
    }

    @Test
    void torchrunUsesTheNextPortBesideItsAgentStore() {
        LaunchEnvironment e = LaunchEnvironment.detect(env("RANK", "3", "WORLD_SIZE", "4", "LOCAL_RANK", "1",
                "LOCAL_WORLD_SIZE", "2", "MASTER_ADDR", "10.0.0.7", "MASTER_PORT", "29500",
                "SLURM_PROCID", "0", "SLURM_STEP_NUM_TASKS", "2", "SLURM_LOCALID", "0",
                "SLURM_STEP_TASKS_PER_NODE", "1(x2)"));
        assertEquals(new LaunchEnvironment(3, 4, 1, 2, "10.0.0.7", 29501, "", Duration.ofSeconds(300),
                LaunchSource.TORCHRUN), e);
        assertEquals(29777, LaunchEnvironment.detect(env("RANK", "0", "WORLD_SIZE", "1", "LOCAL_RANK", "0",
                "LOCAL_WORLD_SIZE", "1", "MASTER_ADDR", "h", "MASTER_PORT", "29500", "USP4J_STORE_PORT", "29777"))
                .storePort());
    }

    @Test
    void openMpiSingleNodeDefaultsAndMultiNodeNeedsMasterAddr() {
        LaunchEnvironment single = LaunchEnvironment.detect(env("OMPI_COMM_WORLD_RANK", "2",
                "OMPI_COMM_WORLD_SIZE", "4", "OMPI_COMM_WORLD_LOCAL_RANK", "2", "OMPI_COMM_WORLD_LOCAL_SIZE", "4",
                "SLURM_PROCID", "0", "SLURM_STEP_NUM_TASKS", "1", "SLURM_LOCALID", "0"));
        assertEquals(new LaunchEnvironment(2, 4, 2, 4, "127.0.0.1", LaunchEnvironment.DEFAULT_PORT, "",
                Duration.ofSeconds(300), LaunchSource.OPEN_MPI), single);

        Map<String, String> multi = env("OMPI_COMM_WORLD_RANK", "5", "OMPI_COMM_WORLD_SIZE", "8",
                "OMPI_COMM_WORLD_LOCAL_RANK", "1", "OMPI_COMM_WORLD_LOCAL_SIZE", "4");
        String msg = refused(multi);
        assertTrue(msg.contains("OMPI_COMM_WORLD_SIZE=8") && msg.contains("MASTER_ADDR is not set")
                && msg.contains("mpirun -x MASTER_ADDR"), msg);
        multi.put("MASTER_ADDR", "head");
        multi.put("MASTER_PORT", "1234");
        assertEquals(new LaunchEnvironment(5, 8, 1, 4, "head", 1234, "", Duration.ofSeconds(300),
                LaunchSource.OPEN_MPI), LaunchEnvironment.detect(multi));
    }

    @Test
    void slurmSrunStep() {
        Map<String, String> e = env("SLURM_PROCID", "6", "SLURM_STEP_NUM_TASKS", "10", "SLURM_LOCALID", "2",
                "SLURM_NODEID", "1", "SLURM_STEP_TASKS_PER_NODE", "4(x2),2",
                "SLURM_STEP_NODELIST", "gpu[007-009],cpu1", "SLURM_JOB_ID", "123456",
                "SLURM_NTASKS", "10", "USP4J_TOKEN", "t");
        assertEquals(new LaunchEnvironment(6, 10, 2, 4, "gpu007", 10_000 + 123456 % 20_000, "t",
                Duration.ofSeconds(300), LaunchSource.SLURM), LaunchEnvironment.detect(e));
        e.put("SLURM_NODEID", "2");
        e.put("SLURM_PROCID", "9");
        e.put("SLURM_LOCALID", "1");
        assertEquals(2, LaunchEnvironment.detect(e).localWorldSize(), "the third node has 2 tasks");
        e.put("MASTER_ADDR", "10.1.1.1");
        e.put("MASTER_PORT", "40000");
        LaunchEnvironment explicit = LaunchEnvironment.detect(e);
        assertEquals("10.1.1.1", explicit.masterAddr());
        assertEquals(40000, explicit.storePort());
    }

    @Test
    void aSlurmBatchScriptIsNotARank() {
        // sbatch gives the batch shell SLURM_PROCID=0 and SLURM_NTASKS, but no step variables
        assertEquals(LaunchSource.NONE, LaunchEnvironment.detect(env("SLURM_PROCID", "0", "SLURM_NTASKS", "4",
                "SLURM_LOCALID", "0", "SLURM_JOB_ID", "99")).source());
    }

    @Test
    void slurmHostListFirstHost() {
        assertEquals("node01", LaunchEnvironment.firstHost("node01"));
        assertEquals("gpu003", LaunchEnvironment.firstHost("gpu[003-010,012],cpu1"));
        assertEquals("rack1-n01", LaunchEnvironment.firstHost("rack[1-2]-n[01-04]"));
        assertEquals("a", LaunchEnvironment.firstHost("a,b[1-2]"));
        assertTrue(assertThrows(IllegalArgumentException.class, () -> LaunchEnvironment.firstHost("n[01-02"))
                .getMessage().contains("unclosed"));
        assertThrows(IllegalArgumentException.class, () -> LaunchEnvironment.firstHost("n[x-y]"));
    }

    @Test
    void partialSettingsNameTheMissingVariables() {
        assertEquals("partial torchrun environment: RANK, WORLD_SIZE are set but LOCAL_RANK, LOCAL_WORLD_SIZE, "
                + "MASTER_ADDR, MASTER_PORT are not (torchrun sets all of RANK, WORLD_SIZE, LOCAL_RANK, "
                + "LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT)", refused(env("RANK", "0", "WORLD_SIZE", "2")));
        assertTrue(refused(env("USP4J_RANK", "1")).startsWith("partial usp4j launch environment: USP4J_RANK is set "
                + "but USP4J_WORLD_SIZE, USP4J_LOCAL_RANK, USP4J_LOCAL_WORLD_SIZE, USP4J_MASTER_ADDR, "
                + "USP4J_MASTER_PORT are not"));
        assertTrue(refused(env("OMPI_COMM_WORLD_RANK", "1", "OMPI_COMM_WORLD_SIZE", "2"))
                .contains("OMPI_COMM_WORLD_LOCAL_RANK, OMPI_COMM_WORLD_LOCAL_SIZE are not"));
        assertTrue(refused(env("SLURM_STEP_NUM_TASKS", "2", "SLURM_PROCID", "1"))
                .contains("SLURM_LOCALID is not"));
        assertTrue(refused(env("SLURM_STEP_NUM_TASKS", "2", "SLURM_PROCID", "1", "SLURM_LOCALID", "1",
                "MASTER_ADDR", "h", "MASTER_PORT", "1")).contains("SLURM_STEP_TASKS_PER_NODE is not set"));
        assertTrue(refused(env("SLURM_STEP_NUM_TASKS", "2", "SLURM_PROCID", "1", "SLURM_LOCALID", "1",
                "SLURM_STEP_TASKS_PER_NODE", "2", "SLURM_STEP_NODELIST", "n1")).contains("neither MASTER_PORT nor "
                + "SLURM_JOB_ID"));
    }

    @Test
    void inconsistentOrMalformedValuesAreRefused() {
        Map<String, String> torch = env("RANK", "0", "WORLD_SIZE", "4", "LOCAL_RANK", "0", "LOCAL_WORLD_SIZE", "2",
                "MASTER_ADDR", "h", "MASTER_PORT", "29500");
        assertEquals(LaunchSource.TORCHRUN, LaunchEnvironment.detect(torch).source());
        assertEquals("torchrun: RANK=4 is not in [0, WORLD_SIZE=4)", refused(with(torch, "RANK", "4")));
        assertEquals("torchrun: RANK=-1 is not in [0, WORLD_SIZE=4)", refused(with(torch, "RANK", "-1")));
        assertEquals("RANK=one is not an integer", refused(with(torch, "RANK", "one")));
        assertEquals("torchrun: LOCAL_RANK=2 is not in [0, 2) (LOCAL_WORLD_SIZE)", refused(with(torch, "LOCAL_RANK", "2")));
        assertEquals("torchrun: LOCAL_WORLD_SIZE gives 8 processes on this node, not in [1, WORLD_SIZE=4]",
                refused(with(torch, "LOCAL_WORLD_SIZE", "8")));
        assertEquals("torchrun: WORLD_SIZE=0 must be at least 1", refused(with(torch, "WORLD_SIZE", "0")));
        assertEquals("MASTER_PORT=70000 is not a port in [1, 65535]", refused(with(torch, "MASTER_PORT", "70000")));
        assertTrue(refused(with(torch, "MASTER_PORT", "65535")).contains("set USP4J_STORE_PORT"));
        assertEquals("torchrun: MASTER_ADDR='bad host' is not a host name or address",
                refused(with(torch, "MASTER_ADDR", "bad host")));
        assertEquals("USP4J_TIMEOUT=0 is not a number of seconds in (0, 604800]", refused(with(torch, "USP4J_TIMEOUT", "0")));
        assertEquals("USP4J_TIMEOUT=soon is not a number of seconds in (0, 604800]",
                refused(with(torch, "USP4J_TIMEOUT", "soon")));
        assertEquals("USP4J_STORE_PORT=0 is not a port in [1, 65535]", refused(with(torch, "USP4J_STORE_PORT", "0")));
        assertTrue(refused(env("SLURM_PROCID", "0", "SLURM_STEP_NUM_TASKS", "2", "SLURM_LOCALID", "0",
                "SLURM_STEP_TASKS_PER_NODE", "2(x", "MASTER_ADDR", "h", "MASTER_PORT", "1"))
                .contains("is not a list like 4(x2),3"));
        assertTrue(refused(env("SLURM_PROCID", "0", "SLURM_STEP_NUM_TASKS", "3", "SLURM_LOCALID", "0",
                "SLURM_STEP_TASKS_PER_NODE", "2,1", "SLURM_NODEID", "5", "MASTER_ADDR", "h", "MASTER_PORT", "1"))
                .contains("SLURM_NODEID=5 is not a node of SLURM_STEP_TASKS_PER_NODE=2,1"));
    }

    @Test
    void theTokenIsRequiredOnlyWhereItIsUsed() {
        LaunchEnvironment e = LaunchEnvironment.detect(env("OMPI_COMM_WORLD_RANK", "0", "OMPI_COMM_WORLD_SIZE", "2",
                "OMPI_COMM_WORLD_LOCAL_RANK", "0", "OMPI_COMM_WORLD_LOCAL_SIZE", "2"));
        assertFalse(e.hasToken());
        String msg = assertThrows(IllegalArgumentException.class, e::requireToken).getMessage();
        assertTrue(msg.startsWith("USP4J_TOKEN is not set: ranks started by mpirun (Open MPI) need a shared secret"), msg);
        assertTrue(msg.contains("mpirun -x USP4J_TOKEN"), msg);
    }

    @Test
    void theRecordChecksItsOwnInvariants() {
        Duration t = Duration.ofSeconds(1);
        assertThrows(IllegalArgumentException.class, () -> new LaunchEnvironment(2, 2, 0, 1, "h", 1, "", t, LaunchSource.USP4J));
        assertThrows(IllegalArgumentException.class, () -> new LaunchEnvironment(0, 2, 0, 3, "h", 1, "", t, LaunchSource.USP4J));
        assertThrows(IllegalArgumentException.class, () -> new LaunchEnvironment(0, 2, 0, 1, "h", 0, "", t, LaunchSource.USP4J));
        assertThrows(IllegalArgumentException.class, () -> new LaunchEnvironment(0, 1, 0, 1, "h", 0, "", Duration.ZERO,
                LaunchSource.NONE));
    }

    private static Map<String, String> with(Map<String, String> base, String key, String value) {
        Map<String, String> m = new HashMap<>(base);
        m.put(key, value);
        return m;
    }
}
