package org.usp4j.apicheck;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.module.Configuration;
import java.lang.module.ModuleDescriptor;
import java.lang.module.ModuleFinder;
import java.lang.reflect.Method;
import java.lang.reflect.Proxy;
import java.net.URISyntaxException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;

/**
 * The compiled module descriptor (tests run on the class path): module {@code org.usp4j} exports exactly
 * the API packages, opens nothing to everyone, and resolves and runs on the module path (a layer of
 * target/classes and its dependencies' jars runs an in-process world through the exported API alone).
 */
class ModuleDescriptorTest {

    static final Set<String> API = Set.of("org.usp4j.api", "org.usp4j.tensor");

    @Test
    void exportsOnlyTheApiPackages() {
        ModuleDescriptor d = ApiSignatures.of(ApiSignatureTest.CLASSES).descriptor();
        assertEquals("org.usp4j", d.name());
        assertFalse(d.isOpen(), "an open module would open its internals to reflection");
        assertEquals(new TreeSet<>(API), d.exports().stream().map(e -> e.source() + (e.isQualified() ? " to " + e.targets() : ""))
                .collect(Collectors.toCollection(TreeSet::new)));
        for (ModuleDescriptor.Opens o : d.opens()) {
            assertTrue(o.isQualified(), "package " + o.source() + " is opened to every module");
        }
        Set<String> requires = d.requires().stream().map(ModuleDescriptor.Requires::name).collect(Collectors.toSet());
        assertTrue(requires.containsAll(Set.of("jdk.incubator.vector", "org.apache.logging.log4j",
                "com.fasterxml.jackson.databind")), requires::toString);
    }

    @Test
    void runsOnTheModulePath() throws Exception {
        List<Path> paths = new ArrayList<>();
        paths.add(ApiSignatureTest.CLASSES);
        for (String dependency : List.of("org.apache.logging.log4j.LogManager", "org.apache.logging.log4j.core.Logger",
                "com.fasterxml.jackson.databind.ObjectMapper", "com.fasterxml.jackson.core.JsonFactory",
                "com.fasterxml.jackson.annotation.JsonProperty", "org.ojalgo.optimisation.ExpressionsBasedModel")) {
            paths.add(jarOf(dependency));
        }
        ModuleLayer boot = ModuleLayer.boot();
        // Log4j's implementation is a service of log4j-api: bound, so that the layer logs as the tests do.
        Configuration cf = boot.configuration().resolveAndBind(ModuleFinder.of(paths.toArray(Path[]::new)),
                ModuleFinder.ofSystem(), Set.of("org.usp4j"));
        ModuleLayer layer = boot.defineModulesWithOneLoader(cf, ClassLoader.getPlatformClassLoader());
        Module usp4j = layer.findModule("org.usp4j").orElseThrow();
        Set<String> internal = new TreeSet<>(usp4j.getPackages());
        internal.removeAll(API);
        assertTrue(internal.containsAll(Set.of("org.usp4j.api.internal", "org.usp4j.bindings.cuda", "org.usp4j.bindings.nccl",
                "org.usp4j.bindings.cudnn", "org.usp4j.cpu", "org.usp4j.sp", "org.usp4j.cli")), internal::toString);
        for (String pkg : usp4j.getPackages()) {
            assertEquals(API.contains(pkg), usp4j.isExported(pkg), pkg);
        }

        // Usp4j.cpuWorld(2).run(rank -> rank.rank()), through reflection on the layer's exported classes.
        Class<?> entry = Class.forName(usp4j, "org.usp4j.api.Usp4j");
        Class<?> world = Class.forName(usp4j, "org.usp4j.api.InProcessWorld");
        Class<?> function = Class.forName(usp4j, "org.usp4j.api.RankFunction");
        Class<?> context = Class.forName(usp4j, "org.usp4j.api.RankContext");
        Method rank = context.getMethod("rank");
        Object rankOfEach = Proxy.newProxyInstance(function.getClassLoader(), new Class<?>[] {function},
                (proxy, method, args) -> method.getName().equals("apply") ? rank.invoke(args[0]) : null);
        try (AutoCloseable w = (AutoCloseable) entry.getMethod("cpuWorld", int.class).invoke(null, 2)) {
            assertEquals(List.of(0, 1), world.getMethod("run", function).invoke(w, rankOfEach));
        }
        Class<?> backend = layer.findLoader("org.usp4j").loadClass("org.usp4j.cpu.CpuBackend");
        assertEquals(usp4j, backend.getModule());
        assertFalse(backend.getModule().isExported(backend.getPackageName()));
    }

    private static Path jarOf(String className) throws ClassNotFoundException, URISyntaxException {
        return Path.of(Class.forName(className).getProtectionDomain().getCodeSource().getLocation().toURI());
    }
}
