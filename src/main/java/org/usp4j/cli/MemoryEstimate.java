package org.usp4j.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.sp.RingAttention;
import org.usp4j.sp.UlyssesAllToAll;
import org.usp4j.sp.UspPlan;
import org.usp4j.tensor.DType;

/**
 * What one {@code attention} run allocates, worked out from the shapes before anything is allocated, so
 * that a run that cannot fit is refused with one line instead of growing until the kernel kills it.
 *
 * <p>Per rank (local sequence s_l = S/P, Q = b s_l h d and KV = b s_l h_kv d elements, KVx the same with
 * the KV heads each rank holds after the Ulysses exchange, L = b h s_l, element size e): what lives from
 * the forward to the end, plus the larger of the forward's and the backward's scratch, each term following
 * the allocations of the Ulysses exchange and the ring (see the comments below). The gathered results
 * come on top once. The input file is memory-mapped, not copied, and is not counted. Checked against the CPU backend's
 * measured peak ({@code MemoryEstimateTest}).
 *
 * @param ranks         simulated ranks in this process
 * @param perRankBytes  the peak working set of one rank
 * @param resultBytes   the gathered outputs (and gradients) in global order
 */
record MemoryEstimate(int ranks, long perRankBytes, long resultBytes) {

    static MemoryEstimate of(AttentionShapes sh, DType dtype, UspPlan plan, boolean backward) {
        int ulysses = plan.mesh().ulysses();
        int ring = plan.mesh().ring();
        int p = ulysses * ring;
        long e = dtype.byteSize();
        long sl = sh.seqQ() / p;
        long q = sh.batch() * sl * sh.heads() * sh.headDim();
        long kv = sh.batch() * sl * sh.kvHeads() * sh.headDim();
        long kvx = sh.batch() * sl * UlyssesAllToAll.exchangedKvHeads(sh.kvHeads(), ulysses) * sh.headDim();
        long l = sh.batch() * sh.heads() * sl;
        boolean exchange = ulysses > 1;
        boolean rotate = ring > 1;
        // the ring passes K/V blocks around; any other algorithm is taken to gather them all, as allgather does
        boolean gather = !plan.ringAlgorithm().name().equals(RingAttention.ALGORITHM.name());
        // held from the forward to the end: dealt inputs, their exchanged copies, the result and its lse,
        // the result gathered back into the rank's sequence slice, and all-gathered K/V
        long lives = (q + 2 * kv) * e + (exchange ? (q + 2 * kvx) * e + q * e : 0) + q * e + 4 * l
                + (gather ? 2 * ring * kvx * e : 0);
        // the forward's scratch: float32 accumulator, with a ring the block accumulators and (passing blocks)
        // the K/V double buffers; with an exchange its send and receive buffers
        long forward = 4 * q + (rotate ? 4 * q + 4 * l + (gather ? 0 : 4 * kvx * e) : 0)
                + (exchange ? 2 * (q + 2 * kvx) * e : 0);
        // the backward's: dout (and its exchange), float32 dQ and dK/dV accumulators (six passing blocks
        // around a ring, R blocks' worth and the reduce-scatter's result when gathered), the K/V double
        // buffers, the outputs, and with an exchange their way back and the KV-head sum
        long accumulators = gather ? 8 * ring * kvx + 8 * kvx : 8 * kvx + (rotate ? 16 * kvx + 4 * kvx * e : 0);
        long backwardScratch = q * e + (exchange ? 3 * q * e : 0) + 4 * q + accumulators + (q + 2 * kvx) * e
                + (exchange ? (q + 2 * kv) * e + 2 * (q + 2 * kvx) * e + 4 * kv : 0);
        long perRank = lives + (backward ? Math.max(forward, backwardScratch) : forward);
        long globalQ = sh.batch() * sh.seqQ() * sh.heads() * sh.headDim();
        long globalKv = sh.batch() * sh.seqQ() * sh.kvHeads() * sh.headDim();
        long results = globalQ * e + 4 * sh.batch() * sh.heads() * sh.seqQ()
                + (backward ? (globalQ + 2 * globalKv) * e : 0);
        return new MemoryEstimate(p, perRank, results);
    }

    long totalBytes() {
        return ranks * perRankBytes + resultBytes;
    }

    /** "4 ranks x 1.2 GiB + 300 MiB of results = 5.1 GiB". */
    String describe() {
        return ranks + (ranks == 1 ? " rank" : " ranks") + " x " + Units.bytes(perRankBytes) + " + "
                + Units.bytes(resultBytes) + " of results = " + Units.bytes(totalBytes());
    }

    /**
     * Refuses (a {@link CommandFailure}) when {@code need} bytes of {@code what} memory exceed
     * {@code available}.
     */
    void require(long need, long available, String what) {
        if (need > available) {
            throw new CommandFailure(String.format(Locale.ROOT, "the run needs about %s of %s memory (%s) but only %s"
                    + " is available; use a shorter sequence, a smaller batch or more ranks on more nodes",
                    Units.bytes(need), what, describe(), Units.bytes(available)));
        }
    }

    /**
     * Host memory available to a new allocation: the kernel's MemAvailable (free memory plus what it can
     * reclaim, such as the page cache); {@code Long.MAX_VALUE} (no check) where there is no /proc/meminfo.
     */
    static long availableHostBytes() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemAvailable:")) {
                    String kb = line.substring("MemAvailable:".length()).replace("kB", "").trim();
                    return Long.parseLong(kb) * 1024;
                }
            }
        } catch (IOException | NumberFormatException e) {
            // not Linux, or an unexpected format: unknown
        }
        return Long.MAX_VALUE;
    }
}
