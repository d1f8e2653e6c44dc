package org.usp4j.api.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * The README's "Embedding usp4j" code block is the worked example's source: the lines between the
 * {@code README:begin} and {@code README:end} markers of {@link ToyTransformerExample}, one level of
 * indentation removed, equal the {@code java} block after the README's example marker.
 */
class ReadmeExampleTest {

    static final Path BASE = Path.of(System.getProperty("basedir", "."));
    static final String MARKER = "<!-- quoted from src/test/java/org/usp4j/api/example/ToyTransformerExample.java -->";

    @org.junit.jupiter.api.Test
    void readmeQuotesTheExampleVerbatim() throws IOException {
        List<String> source = Files.readAllLines(BASE.resolve(
                "src/test/java/org/usp4j/api/example/ToyTransformerExample.java"));
        int begin = source.indexOf("    // README:begin");
        int end = source.indexOf("    // README:end");
        assertTrue(begin >= 0 && end > begin, "the example has no README:begin/README:end markers");
        List<String> quoted = source.subList(begin + 1, end).stream()
                .map(l -> l.startsWith("    ") ? l.substring(4) : l).toList();

        List<String> readme = Files.readAllLines(BASE.resolve("README.md"));
        int marker = readme.indexOf(MARKER);
        assertTrue(marker >= 0, "README.md has no line " + MARKER);
        assertEquals("```java", readme.get(marker + 1), "the marker must be followed by a java code block");
        int close = readme.subList(marker + 2, readme.size()).indexOf("```") + marker + 2;
        assertTrue(close > marker + 1, "the README's example block is not closed");
        assertEquals(String.join("\n", quoted), String.join("\n", readme.subList(marker + 2, close)),
                "README.md's example differs from ToyTransformerExample's README region: copy the region"
                        + " (one indentation level less) into the block after the marker");
    }
}
