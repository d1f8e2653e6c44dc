package org.usp4j.cli;

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

/**
 * The {@code --report} file: {@code {"ranks":[{"rank":0,"bytes_sent":{"all_to_all":N,"p2p":N,
 * "all_gather":N},"attention_pairs":{"forward":N,"backward":N}}, ...]}}, one entry per rank in rank
 * order. Attention pairs are the unmasked (query, key) pairs the rank's kernel calls computed, summed
 * over batch and heads: the measure of each rank's share of the work.
 */
record TrafficReport(List<RankTraffic> ranks) {

    private static final ObjectMapper JSON = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();

    record RankTraffic(int rank, @JsonProperty("bytes_sent") Map<String, Long> bytesSent,
                       @JsonProperty("attention_pairs") Map<String, Long> attentionPairs) {
    }

    /**
     * Each rank's bytes of the forward plus the backward, per kind: the kinds every report has, and every
     * other kind any rank used.
     */
    static TrafficReport of(List<AttentionEngine.RankFigures> perRank) {
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
        for (AttentionEngine.RankFigures f : perRank) {
            Map<String, Long> bytes = new LinkedHashMap<>();
            for (TrafficKind kind : listed) {
                bytes.put(kind.jsonName(), f.bytesSent().get(kind));
            }
            Map<String, Long> pairs = new LinkedHashMap<>();
            pairs.put("forward", f.forwardPairs());
            pairs.put("backward", f.backwardPairs());
            ranks.add(new RankTraffic(f.rank(), bytes, pairs));
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
