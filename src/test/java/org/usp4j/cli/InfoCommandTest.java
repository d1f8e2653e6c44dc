package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.usp4j.nativelib.ResolverEnvironment;

/**
 * {@code usp4j info} with the test build's real NCCL 2.23 and cuDNN 9.5 (the surefire settings name
 * them) and on a made-up machine with no libraries: exit 0 and a complete report either way.
 */
class InfoCommandTest {

    @TempDir
    Path empty;

    @AfterEach
    void realMachineAgain() {
        InfoCommand.environment = null;
    }

    @Test
    void textNamesTheLibrariesFoundAndTheSdpaAndAllToAllPaths() {
        Cli.Result r = Cli.run("info");
        r.assertOk();
        assertTrue(r.out().contains("usp4j "), r.out());
        assertTrue(r.out().contains("JDK: " + Runtime.version()), r.out());
        assertTrue(r.out().matches("(?s).*\\n  nccl +2\\.23\\.4 .*"), r.out());
        assertTrue(r.out().matches("(?s).*\\n  cudnn +9\\.5\\.1 .*"), r.out());
        assertTrue(r.out().contains("dedicated SDPA operation needs 9.13.1"), r.out());
        assertTrue(r.out().contains("native all-to-all needs 2.28.3"), r.out());
        assertTrue(r.out().contains("CUDA devices:"), r.out());
    }

    @Test
    void jsonParsesAndHasEveryPart() throws Exception {
        Cli.Result r = Cli.run("info", "--json");
        r.assertOk();
        JsonNode json = new ObjectMapper().readTree(r.out());
        for (String field : new String[] {"usp4j", "jdk", "cpu", "libraries", "cuda", "cudnn_sdpa", "nccl_all_to_all"}) {
            assertTrue(json.has(field), field + " missing in " + r.out());
        }
        Map<String, JsonNode> libs = new java.util.HashMap<>();
        json.get("libraries").forEach(l -> libs.put(l.get("name").asText(), l));
        assertEquals(3, libs.size());
        assertTrue(libs.get("nccl").get("found").asBoolean());
        assertEquals("2.23.4", libs.get("nccl").get("version").asText());
        assertTrue(libs.get("cudnn").get("path").asText().endsWith("libcudnn.so.9"));
        assertFalse(json.get("cudnn_sdpa").get("dedicated_operation").asBoolean());
        assertEquals("grouped ncclSend/ncclRecv", json.get("nccl_all_to_all").get("used").asText());
        assertTrue(json.get("cuda").get("devices").isArray());
    }

    @Test
    void withoutLibrariesItStillExitsZeroAndListsThePlacesTried() throws Exception {
        InfoCommand.environment = new ResolverEnvironment(Map.of(), Map.of(), empty, empty, empty.resolve("cache"),
                ClassLoader.getPlatformClassLoader(), false);
        Cli.Result text = Cli.run("info");
        text.assertOk();
        assertTrue(text.out().contains("nccl    not found (libnccl.so.2); places tried:"), text.out());
        assertTrue(text.out().contains("USP4J_CUDNN_PATH"), text.out());
        assertTrue(text.out().contains("CUDA devices: none (no CUDA runtime found"), text.out());
        Cli.Result json = Cli.run("info", "--json");
        json.assertOk();
        JsonNode root = new ObjectMapper().readTree(json.out());
        for (JsonNode lib : root.get("libraries")) {
            assertFalse(lib.get("found").asBoolean(), lib.toString());
            assertTrue(lib.get("places_tried").size() > 0, lib.toString());
        }
        assertEquals("none", root.get("cudnn_sdpa").get("used").asText());
    }

    @Test
    void unknownOptionsAreUsageErrors() {
        Cli.run("info", "--yaml").assertOneErrorLine(2);
    }
}
