package org.usp4j.cli;

import java.io.IOException;
import java.io.PrintWriter;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.util.Locale;
import java.util.Map;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.io.SafetensorsFile;
import org.usp4j.launch.LaunchEnvironment;
import org.usp4j.plan.CostProfile;
import org.usp4j.plan.Plan;
import org.usp4j.plan.PlanRunner;
import org.usp4j.plan.PlanShape;
import org.usp4j.plan.PlannedGroup;
import org.usp4j.plan.SequencePlanner;
import org.usp4j.plan.StepTimeModel;
import org.usp4j.tensor.Tensor;

/**
 * {@code usp4j attention --plan auto}: plans the packed input's sequence lengths over P in-process cpu
 * ranks with the built-in cost profile ({@link SequencePlanner}), runs the plan ({@link PlanRunner}) and
 * writes OUT as a mesh run does; the report adds each rank's group and mesh.
 */
final class PlannedAttention {

    static final int DEFAULT_RANKS = 4;

    private static final Logger LOG = LogManager.getLogger(PlannedAttention.class);

    private final AttentionCommand command;

    PlannedAttention(AttentionCommand command) {
        this.command = command;
    }

    int call() throws IOException {
        AttentionCommand c = command;
        if (LaunchEnvironment.detect(c.environment).isDistributed()) {
            throw new CommandFailure("--plan runs in-process cpu ranks only, not under a launcher");
        }
        if (c.backend != BackendKind.CPU) {
            throw new CommandFailure("--plan runs in-process cpu ranks only; leave out --backend " + c.backend);
        }
        int p = c.ranks != null ? c.ranks : DEFAULT_RANKS;
        PrintWriter out = c.spec.commandLine().getOut();
        StatusLine status = StatusLine.forStderr(c.spec.commandLine().getErr());
        OutputPaths.requireWritable(c.output, "--output");
        if (c.report != null) {
            OutputPaths.requireWritable(c.report, "--report");
        }
        if (Files.isDirectory(c.input)) {
            throw new CommandFailure("--input " + c.input + " is a directory");
        }
        try (RankBackends backends = RankBackends.open(BackendKind.CPU);
             SafetensorsFile in = SafetensorsFile.open(c.input); Arena arena = Arena.ofConfined()) {
            AttentionInputs inputs = AttentionInputs.read(in, c.backward);
            if (inputs.sequences() == null) {
                throw new CommandFailure("--plan needs packed sequences: " + c.input + " has no "
                        + AttentionInputs.CU_SEQLENS + " (make one with random-input --lengths)");
            }
            if (!c.allowNonfinite) {
                inputs.requireFinite(c.input);
            }
            Plan plan = plan(inputs, p);
            String what = inputs.describe() + ", plan of " + plan.groups().size()
                    + (plan.groups().size() == 1 ? " group" : " groups") + " on " + plan.ranksUsed()
                    + " of " + p + " ranks" + (c.causal ? ", causal" : "") + ", backend cpu";
            LOG.info("attention: {}", what);
            PlanRunner.Result result;
            try {
                status.show("attention on " + plan.groups().size() + " groups ...");
                result = PlanRunner.run(plan, c.causal, c.scale, backends::forRank, inputs.q(), inputs.k(), inputs.v(),
                        inputs.dout(), inputs.sequences(), arena);
            } catch (IllegalArgumentException e) {
                throw new CommandFailure(e.getMessage(), e);
            } finally {
                status.clear();
            }
            Map<String, Tensor> results = AttentionCommand.results(result.forward(), result.gradients());
            try {
                status.show("writing " + c.output + " ...");
                AttentionCommand.write(c.output, results, inputs, what);
                if (c.report != null) {
                    TrafficReport.ofPlan(result.ranks()).write(c.report);
                }
            } finally {
                status.clear();
            }
            out.println("attention: " + what);
            for (int g = 0; g < plan.groups().size(); g++) {
                PlannedGroup group = plan.groups().get(g);
                out.println(String.format(Locale.ROOT, "group %d: ranks %s, mesh %s, sequences %s", g, group.ranks(),
                        StepTimeModel.label(group.mesh()), group.sequences()));
            }
            out.println(String.format(Locale.ROOT, "step %.3f s (all groups at once); wrote %s (%s)",
                    result.wallSeconds(), c.output, String.join(", ", results.keySet()))
                    + (c.report != null ? "; report " + c.report : ""));
            out.flush();
        }
        return ExitCodes.OK;
    }

    /** The planner's plan of the input's lengths on {@code p} ranks under the built-in profile. */
    private Plan plan(AttentionInputs inputs, int p) {
        long[] lengths = new long[inputs.sequences().count()];
        for (int i = 0; i < lengths.length; i++) {
            lengths[i] = inputs.sequences().length(i);
        }
        try {
            PlanShape shape = new PlanShape(inputs.shapes().heads(), inputs.shapes().kvHeads(),
                    inputs.shapes().headDim(), inputs.dtype(), command.causal);
            StepTimeModel model = new StepTimeModel(CostProfile.builtInDefault(), shape);
            return SequencePlanner.plan(lengths, p, model, SequencePlanner.Options.defaults()).plan();
        } catch (IllegalArgumentException e) {
            throw new CommandFailure("planning " + lengths.length + " sequences on " + p + " ranks: " + e.getMessage(), e);
        }
    }
}
