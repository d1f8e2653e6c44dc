package org.usp4j.cli;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.TreeMap;
import org.usp4j.plan.LengthDistribution;
import org.usp4j.plan.PlannedGroup;
import org.usp4j.plan.SequencePlanner;
import org.usp4j.plan.StepTimeModel;

/**
 * {@code usp4j plan --bench}: plans seeded batches from two long-tailed lognormal length distributions for
 * P = 8, 16 and 64 ranks (a budget of 16K tokens per rank, seed 0) and prints the predicted step time of
 * the plan against the best static mesh, both under the same cost model.
 */
final class PlanBench {

    static final List<LengthDistribution> DISTRIBUTIONS = List.of(
            new LengthDistribution(8.0, 1.2, 128, 262_144),
            new LengthDistribution(7.0, 1.8, 128, 262_144));
    static final int[] RANKS = {8, 16, 64};
    static final long TOKENS_PER_RANK = 16_384;

    private static final ObjectMapper JSON = JsonMapper.builder().build();

    private PlanBench() {
    }

    static int run(PrintWriter out, StepTimeModel model, SequencePlanner.Options options, boolean json) throws IOException {
        if (!json) {
            out.println("usp4j plan --bench: " + model.shape() + "; " + TOKENS_PER_RANK + " tokens per rank, seed 0; solver "
                    + options.timeLimit().toMillis() + " ms");
            out.println("cost profile: " + model.profile().backend() + ", " + model.profile().source());
            out.printf(Locale.ROOT, "%-40s %4s %5s %8s %12s %12s %-6s %8s  %s%n", "lengths", "P", "seqs", "longest",
                    "plan ms", "static ms", "static", "speedup", "groups (how found)");
        }
        for (LengthDistribution d : DISTRIBUTIONS) {
            for (int p : RANKS) {
                long[] batch = d.batch(p * TOKENS_PER_RANK, 0);
                SequencePlanner.Result r = SequencePlanner.plan(batch, p, model, options);
                long longest = 0;
                for (long s : batch) {
                    longest = Math.max(longest, s);
                }
                double plan = r.plan().predictedSeconds() * 1e3;
                Double stat = r.staticBaseline().map(x -> x.predictedSeconds() * 1e3).orElse(null);
                String groups = groups(r);
                if (json) {
                    ObjectNode o = JSON.createObjectNode();
                    o.put("distribution", d.toString());
                    o.put("ranks", p);
                    o.put("sequences", batch.length);
                    o.put("longest", longest);
                    o.put("predicted_ms", plan);
                    if (stat != null) {
                        o.put("static_predicted_ms", stat);
                        o.put("static_mesh", r.staticMesh().orElseThrow());
                    } else {
                        o.putNull("static_predicted_ms");
                        o.putNull("static_mesh");
                    }
                    o.put("groups", groups);
                    o.put("method", r.method().name().toLowerCase(Locale.ROOT));
                    out.println(JSON.writeValueAsString(o));
                } else {
                    out.printf(Locale.ROOT, "%-40s %4d %5d %8d %12.3f %12s %-6s %8s  %s (%s)%n", d, p, batch.length, longest,
                            plan, stat == null ? "-" : String.format(Locale.ROOT, "%.3f", stat),
                            r.staticMesh().orElse("-"), stat == null ? "-" : String.format(Locale.ROOT, "%.2fx", stat / plan),
                            groups, PlanCommand.describe(r));
                }
                out.flush();
            }
        }
        return ExitCodes.OK;
    }

    /** "1x8 + 4 x 1x2": the plan's meshes, largest first, with counts. */
    private static String groups(SequencePlanner.Result r) {
        Map<Integer, Map<String, Integer>> bySize = new TreeMap<>((a, b) -> b - a);
        for (PlannedGroup g : r.plan().groups()) {
            bySize.computeIfAbsent(g.mesh().size(), k -> new TreeMap<>()).merge(StepTimeModel.label(g.mesh()), 1, Integer::sum);
        }
        StringBuilder sb = new StringBuilder();
        bySize.values().forEach(m -> m.forEach((mesh, n) -> {
            if (!sb.isEmpty()) {
                sb.append(" + ");
            }
            sb.append(n == 1 ? mesh : n + " x " + mesh);
        }));
        return sb.toString();
    }
}
