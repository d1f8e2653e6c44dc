package org.usp4j.cli;

import com.fasterxml.jackson.annotation.JsonInclude;
import com.fasterxml.jackson.annotation.JsonProperty;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.EnumSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import org.usp4j.comm.TrafficKind;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.io.AtomicFiles;
import org.usp4j.plan.PlanRunner;
import org.usp4j.plan.StepTimeModel;

/**
 * The {@code --report} file: {@code {"ranks":[{"rank":0,"bytes_sent":{"all_to_all":N,"p2p":N,
 * "all_gather":N},"attention_pairs":{"forward":N,"backward":N}}, ...]}}, one entry per rank in rank
 * order. Attention pairs are the unmasked (query, key) pairs the rank's kernel calls computed, summed
 * over batch and heads: the measure of each rank's share of the work. A planned run ({@code --plan})
 * adds each rank's {@code "group"} (index into the plan) and {@code "mesh"} ("UxR" of its group).
 */
record TrafficReport(List<RankTraffic> ranks) {

    private static final ObjectMapper JSON = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();

    @JsonInclude(JsonInclude.Include.NON_NULL)
    record RankTraffic(int rank, Integer group, String mesh, @JsonProperty("bytes_sent") Map<String, Long> bytesSent,
                       @JsonProperty("attention_pairs") Map<String, Long> attentionPairs) {
    }

    /**
     * Each rank's bytes of the forward plus the backward, per kind: the kinds every report has, and every
     * other kind any rank used.
     */
    static TrafficReport of(List<AttentionEngine.RankFigures> perRank) {
        return of(perRank, java.util.Collections.nCopies(perRank.size(), null));
    }

    /** As {@link #of(List)}, for the ranks of a planned run, with each rank's group and mesh. */
    static TrafficReport ofPlan(List<PlanRunner.RankRun> perRank) {
        return of(perRank.stream().map(PlanRunner.RankRun::figures).toList(), perRank);
    }

    private static TrafficReport of(List<AttentionEngine.RankFigures> perRank, List<PlanRunner.RankRun> planned) {
        Set<TrafficKind> listed = EnumSet.noneOf(TrafficKind.class);
        for (TrafficKind kind : TrafficKind.values()) {
            if (kind.alwaysReported()) {
                listed.add(kind);
            }
        }
        for (AttentionEngine.RankFigures f : perRank) {
            listed.addAll(f.bytesSent().used());
        }
        List<RankTraffic> ranks = new ArrayList<>();
        for (int i = 0; i < perRank.size(); i++) {
            AttentionEngine.RankFigures f = perRank.get(i);
            PlanRunner.RankRun p = planned.get(i);
            Map<String, Long> bytes = new LinkedHashMap<>();
            for (TrafficKind kind : listed) {
                bytes.put(kind.jsonName(), f.bytesSent().get(kind));
            }
            Map<String, Long> pairs = new LinkedHashMap<>();
            pairs.put("forward", f.forwardPairs());
            pairs.put("backward", f.backwardPairs());
            ranks.add(p == null ? new RankTraffic(f.rank(), null, null, bytes, pairs)
                    : new RankTraffic(p.rank(), p.group(), StepTimeModel.label(p.mesh()), bytes, pairs));
        }
        return new TrafficReport(List.copyOf(ranks));
    }

    void write(Path file) throws IOException {
        byte[] json = JSON.writeValueAsBytes(this);
        byte[] withNewline = java.util.Arrays.copyOf(json, json.length + 1);
        withNewline[json.length] = '\n';
        AtomicFiles.write(file, withNewline);
    }
}
