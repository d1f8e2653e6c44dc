package org.usp4j.apicheck;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.IOException;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import javax.tools.Diagnostic;
import javax.tools.DiagnosticCollector;
import javax.tools.DocumentationTool;
import javax.tools.JavaFileObject;
import javax.tools.StandardJavaFileManager;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;

/**
 * The Javadoc of the exported packages builds without a warning under every doclint check (missing
 * comments included), so {@code mvn verify} enforces it: the javadoc tool on their sources, against the
 * compiled classes, into {@code target/api-javadoc}.
 */
class ApiJavadocTest {

    @Test
    void exportedPackagesHaveCompleteJavadocWithoutWarnings() throws IOException {
        Path sources = ApiSignatureTest.BASE.resolve("src/main/java");
        List<Path> files = new ArrayList<>();
        for (String pkg : ApiSignatures.of(ApiSignatureTest.CLASSES).exportedPackages()) {
            try (Stream<Path> list = Files.list(sources.resolve(pkg.replace('.', '/')))) {
                list.filter(p -> p.toString().endsWith(".java")).forEach(files::add);
            }
        }
        DocumentationTool javadoc = ToolProvider.getSystemDocumentationTool();
        DiagnosticCollector<JavaFileObject> diagnostics = new DiagnosticCollector<>();
        StringWriter output = new StringWriter();
        Path out = ApiSignatureTest.BASE.resolve("target/api-javadoc");
        try (StandardJavaFileManager fm = javadoc.getStandardFileManager(diagnostics, null, null)) {
            List<String> options = List.of("-d", out.toString(), "-quiet", "-Xdoclint:all", "-Werror",
                    "--release", "22", "-classpath", ApiSignatureTest.CLASSES + java.io.File.pathSeparator
                            + System.getProperty("java.class.path"));
            boolean ok = javadoc.getTask(output, fm, diagnostics, null, options, fm.getJavaFileObjectsFromPaths(files))
                    .call();
            List<String> problems = diagnostics.getDiagnostics().stream()
                    .filter(d -> d.getKind() == Diagnostic.Kind.WARNING || d.getKind() == Diagnostic.Kind.ERROR
                            || d.getKind() == Diagnostic.Kind.MANDATORY_WARNING)
                    .map(d -> d.getKind() + " " + (d.getSource() == null ? "" : d.getSource().getName() + ":"
                            + d.getLineNumber() + ": ") + d.getMessage(null))
                    .toList();
            assertEquals(List.of(), problems, "javadoc output:\n" + output);
            assertEquals(true, ok, "javadoc failed:\n" + output);
        }
    }
}
