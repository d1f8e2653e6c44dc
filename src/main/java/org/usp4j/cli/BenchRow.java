package org.usp4j.cli;

import com.fasterxml.jackson.annotation.JsonProperty;
import java.util.List;

/**
 * One line of {@code usp4j bench}: a configuration, a pass, and what it measured. Times are per call
 * (median and best of the timed calls); throughput counts unmasked pairs; bytes are what one rank sent
 * during one call, next to the cost model's figure (the most any rank sends). {@code attention} is softmax
 * (USP with ring attention) or linear (USP with LASP-2; its FLOP/s count the state products, 4 b h S d^2
 * forward, twice that backward). Attention pairs are what each rank's kernels computed in one call (over
 * batch and heads), and their spread the most over the fewest (null where no softmax kernel ran).
 */
record BenchRow(
        String backend,
        String mesh,
        int ulysses,
        int ring,
        int ranks,
        long seq,
        long batch,
        long heads,
        @JsonProperty("kv_heads") long kvHeads,
        @JsonProperty("head_dim") long headDim,
        String dtype,
        boolean causal,
        String layout,
        String attention,
        String pass,
        int calls,
        double ms,
        @JsonProperty("ms_min") double msMin,
        double gflops,
        double tflops,
        @JsonProperty("bytes_per_rank") long bytesPerRank,
        @JsonProperty("model_bytes_per_rank") long modelBytesPerRank,
        @JsonProperty("attention_pairs") List<Long> attentionPairs,
        @JsonProperty("pairs_spread") Double pairsSpread) {
}
