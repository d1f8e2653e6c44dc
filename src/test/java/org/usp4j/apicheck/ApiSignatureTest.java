package org.usp4j.apicheck;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import org.junit.jupiter.api.Test;

/**
 * The exported API equals the committed signature file {@code src/main/api/usp4j.api}, so that an
 * accidental change to a public signature fails the build; a deliberate one regenerates the file with
 * {@code mvn -Dusp4j.api.update test -Dtest=ApiSignatureTest} and commits it (the diff is the API change).
 */
class ApiSignatureTest {

    static final Path BASE = Path.of(System.getProperty("basedir", "."));
    static final Path CLASSES = BASE.resolve("target/classes");
    static final Path API_FILE = BASE.resolve("src/main/api/usp4j.api");
    static final String UPDATE = "mvn -Dusp4j.api.update test -Dtest=ApiSignatureTest";

    @Test
    void exportedApiEqualsTheCommittedSignatureFile() throws IOException {
        String actual = ApiSignatures.of(CLASSES).render();
        String update = System.getProperty("usp4j.api.update");
        if (update != null && !update.equals("false")) {
            Files.createDirectories(API_FILE.getParent());
            Files.writeString(API_FILE, actual);
            System.out.println("wrote " + API_FILE + ": review the diff and commit it");
            return;
        }
        assertTrue(Files.exists(API_FILE), API_FILE + " is missing; generate it with: " + UPDATE);
        String expected = Files.readString(API_FILE);
        if (!expected.equals(actual)) {
            fail("the exported API differs from " + API_FILE + " (- committed, + compiled):\n"
                    + String.join("\n", difference(expected, actual))
                    + "\nIf the change is deliberate, regenerate the file with: " + UPDATE
                    + "\nand commit it; otherwise restore the signatures above.");
        }
    }

    @Test
    void apiMentionsOnlyExportedTypes() {
        assertEquals(List.of(), ApiSignatures.of(CLASSES).leaks(),
                "exported signatures name types that modules using org.usp4j cannot access: export their"
                        + " package, or keep them out of public signatures");
    }

    /** The lines only in one of the texts, as "- line" and "+ line" (with the type line before a member). */
    static List<String> difference(String expected, String actual) {
        Set<String> before = new LinkedHashSet<>(expected.lines().toList());
        Set<String> after = new LinkedHashSet<>(actual.lines().toList());
        List<String> diff = new ArrayList<>();
        before.stream().filter(l -> !after.contains(l)).forEach(l -> diff.add("- " + l));
        after.stream().filter(l -> !before.contains(l)).forEach(l -> diff.add("+ " + l));
        return diff;
    }
}
