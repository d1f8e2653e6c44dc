package org.usp4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.Locale;
import java.util.concurrent.Callable;
import org.usp4j.info.SystemReport;
import org.usp4j.nativelib.ResolverEnvironment;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * {@code usp4j info}: the JDK, each native library found (path, version, where) or the places tried,
 * the CUDA devices, and which cuDNN SDPA and NCCL all-to-all paths are available. A diagnosis: it exits
 * 0 whatever is missing.
 */
@Command(name = "info",
        mixinStandardHelpOptions = true,
        versionProvider = VersionProvider.class,
        sortOptions = false,
        usageHelpAutoWidth = true,
        description = "Show what usp4j finds here: the JDK, the native libraries (or every place tried), the CUDA "
                + "devices, and which cuDNN SDPA and NCCL all-to-all paths the versions found allow. Exits 0 even "
                + "when libraries are missing.")
final class InfoCommand implements Callable<Integer> {

    private static final ObjectMapper JSON = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();

    /** Where libraries are resolved; tests put a made-up machine here. */
    static ResolverEnvironment environment = null;

    @Spec
    CommandSpec spec;

    @Option(names = "--json", description = "One JSON object instead of text.")
    boolean json;

    @Override
    public Integer call() throws IOException {
        ResolverEnvironment env = environment != null ? environment : ResolverEnvironment.current();
        SystemReport report = SystemReport.collect(VersionProvider.version(), env, environment == null);
        PrintWriter out = spec.commandLine().getOut();
        if (json) {
            out.println(JSON.writeValueAsString(report));
        } else {
            print(out, report);
        }
        out.flush();
        return ExitCodes.OK;
    }

    static void print(PrintWriter out, SystemReport r) {
        out.println("usp4j " + r.usp4j());
        out.printf(Locale.ROOT, "JDK: %s (%s, %s), %s%n", r.jdk().version(), r.jdk().vendor(), r.jdk().vm(), r.jdk().home());
        out.printf(Locale.ROOT, "CPU: %d processors (%s), %d-bit float vectors for the Vector API%n", r.cpu().processors(),
                r.cpu().arch(), r.cpu().vectorBits());
        out.println("native libraries:");
        for (SystemReport.Library lib : r.libraries()) {
            if (lib.found()) {
                out.printf(Locale.ROOT, "  %-7s %s  %s  (found via %s)%n", lib.name(), lib.version(), lib.path(),
                        lib.location());
                if (lib.alsoFound() != null) {
                    lib.alsoFound().forEach(other -> out.println("            also found, not loaded: " + other));
                }
            } else {
                out.printf(Locale.ROOT, "  %-7s not found (%s); places tried:%n", lib.name(), lib.file());
                for (String place : lib.placesTried()) {
                    out.println("            - " + place);
                }
                out.println("            (" + lib.hint() + ")");
            }
        }
        SystemReport.CudaStatus cuda = r.cuda();
        out.printf(Locale.ROOT, "CUDA: runtime %s, driver %s%n", orDash(cuda.runtimeVersion()), orDash(cuda.driverVersion()));
        if (cuda.devices().isEmpty()) {
            out.println("CUDA devices: none" + (cuda.problem() != null ? " (" + cuda.problem() + ")" : ""));
        } else {
            out.println("CUDA devices:");
            for (SystemReport.Device d : cuda.devices()) {
                out.printf(Locale.ROOT, "  %d: %s, compute capability %s, %s, %d SMs, %d KiB shared memory per block%n",
                        d.index(), d.name(), d.computeCapability(), Units.bytes(d.memoryBytes()), d.multiprocessors(),
                        d.maxSharedMemoryPerBlockOptin() / 1024);
            }
        }
        out.println("cuDNN SDPA: " + r.cudnnSdpa().note());
        out.println("NCCL all-to-all: " + r.ncclAllToAll().note());
    }

    private static String orDash(String s) {
        return s == null ? "-" : s;
    }
}
