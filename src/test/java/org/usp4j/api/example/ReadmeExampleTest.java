package org.usp4j.api.example;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * The README's "Embedding usp4j" code blocks are the worked examples' sources: for each example, the
 * lines between the {@code README:begin} and {@code README:end} markers, one level of indentation
 * removed, equal the {@code java} block after the README's marker line naming that example's file.
 */
class ReadmeExampleTest {

    static final Path BASE = Path.of(System.getProperty("basedir", "."));

    @ParameterizedTest
    @ValueSource(strings = {"ToyTransformerExample", "HybridModelExample"})
    void readmeQuotesTheExampleVerbatim(String example) throws IOException {
        String file = "src/test/java/org/usp4j/api/example/" + example + ".java";
        String marker = "<!-- quoted from " + file + " -->";
        List<String> source = Files.readAllLines(BASE.resolve(file));
        int begin = source.indexOf("    // README:begin");
        int end = source.indexOf("    // README:end");
        assertTrue(begin >= 0 && end > begin, example + " has no README:begin/README:end markers");
        List<String> quoted = source.subList(begin + 1, end).stream()
                .map(l -> l.startsWith("    ") ? l.substring(4) : l).toList();

        List<String> readme = Files.readAllLines(BASE.resolve("README.md"));
        int at = readme.indexOf(marker);
        assertTrue(at >= 0, "README.md has no line " + marker);
        assertEquals("```java", readme.get(at + 1), "the marker must be followed by a java code block");
        int close = readme.subList(at + 2, readme.size()).indexOf("```") + at + 2;
        assertTrue(close > at + 1, "the README's example block is not closed");
        assertEquals(String.join("\n", quoted), String.join("\n", readme.subList(at + 2, close)),
                "README.md's example differs from " + example + "'s README region: copy the region"
                        + " (one indentation level less) into the block after the marker");
    }
}
