package org.usp4j.kernel;

import java.lang.foreign.MemorySegment;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Plain, obviously-correct attention in float64 on host tensors: the oracle the fast kernels and the
 * distributed strategies are checked against. It works one query row at a time and never keeps more
 * than one row of scores, but it is slow; use it on small shapes only.
 */
public final class ReferenceAttention implements AttentionKernel {

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, Mask mask, float scale, Tensor out, Tensor lse) {
        AttentionShapes sh = AttentionShapes.ofForward(q, k, v, out, lse);
        int b = (int) sh.batch(), sq = (int) sh.seqQ(), skv = (int) sh.seqKv();
        int h = (int) sh.heads(), hkv = (int) sh.kvHeads(), d = (int) sh.headDim();
        int group = h / hkv;
        double[] qa = HostTensors.toDoubleArray(q);
        double[] ka = HostTensors.toDoubleArray(k);
        double[] va = HostTensors.toDoubleArray(v);
        double[] oa = new double[qa.length];
        double[] la = new double[b * h * sq];
        double[] scores = new double[skv];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                int kh = hi / group;
                for (int i = 0; i < sq; i++) {
                    int qBase = ((bi * sq + i) * h + hi) * d;
                    double max = Double.NEGATIVE_INFINITY;
                    for (int j = 0; j < skv; j++) {
                        if (!mask.allows(i, j)) {
                            scores[j] = Double.NEGATIVE_INFINITY;
                            continue;
                        }
                        int kBase = ((bi * skv + j) * hkv + kh) * d;
                        double dot = 0;
                        for (int x = 0; x < d; x++) {
                            dot += qa[qBase + x] * ka[kBase + x];
                        }
                        scores[j] = scale * dot;
                        max = Math.max(max, scores[j]);
                    }
                    int lseIndex = (bi * h + hi) * sq + i;
                    if (max == Double.NEGATIVE_INFINITY) {
                        la[lseIndex] = Double.NEGATIVE_INFINITY;
                        continue; // no visible key: out stays 0
                    }
                    double sum = 0;
                    for (int j = 0; j < skv; j++) {
                        sum += Math.exp(scores[j] - max);
                    }
                    double rowLse = max + Math.log(sum);
                    la[lseIndex] = rowLse;
                    for (int j = 0; j < skv; j++) {
                        double p = Math.exp(scores[j] - rowLse);
                        if (p == 0) {
                            continue;
                        }
                        int vBase = ((bi * skv + j) * hkv + kh) * d;
                        for (int x = 0; x < d; x++) {
                            oa[qBase + x] += p * va[vBase + x];
                        }
                    }
                }
            }
        }
        store(oa, out);
        store(la, lse);
    }

    @Override
    public void backward(Tensor q, Tensor k, Tensor v, Tensor out, Tensor dout, Tensor lse, Mask mask, float scale,
                         Tensor dq, Tensor dk, Tensor dv, boolean accumulate) {
        AttentionShapes sh = AttentionShapes.ofBackward(q, k, v, out, dout, lse, dq, dk, dv);
        int b = (int) sh.batch(), sq = (int) sh.seqQ(), skv = (int) sh.seqKv();
        int h = (int) sh.heads(), hkv = (int) sh.kvHeads(), d = (int) sh.headDim();
        int group = h / hkv;
        double[] qa = HostTensors.toDoubleArray(q);
        double[] ka = HostTensors.toDoubleArray(k);
        double[] va = HostTensors.toDoubleArray(v);
        double[] oa = HostTensors.toDoubleArray(out);
        double[] doa = HostTensors.toDoubleArray(dout);
        double[] la = HostTensors.toDoubleArray(lse);
        double[] dqa = accumulate ? HostTensors.toDoubleArray(dq) : new double[qa.length];
        double[] dka = accumulate ? HostTensors.toDoubleArray(dk) : new double[ka.length];
        double[] dva = accumulate ? HostTensors.toDoubleArray(dv) : new double[va.length];
        for (int bi = 0; bi < b; bi++) {
            for (int hi = 0; hi < h; hi++) {
                int kh = hi / group;
                for (int i = 0; i < sq; i++) {
                    int qBase = ((bi * sq + i) * h + hi) * d;
                    double rowLse = la[(bi * h + hi) * sq + i];
                    if (rowLse == Double.NEGATIVE_INFINITY) {
                        continue;
                    }
                    double delta = 0;
                    for (int x = 0; x < d; x++) {
                        delta += doa[qBase + x] * oa[qBase + x];
                    }
                    for (int j = 0; j < skv; j++) {
                        if (!mask.allows(i, j)) {
                            continue;
                        }
                        int kBase = ((bi * skv + j) * hkv + kh) * d;
                        double dot = 0;
                        double dp = 0;
                        for (int x = 0; x < d; x++) {
                            dot += qa[qBase + x] * ka[kBase + x];
                            dp += doa[qBase + x] * va[kBase + x];
                        }
                        double p = Math.exp(scale * dot - rowLse);
                        double ds = p * (dp - delta);
                        for (int x = 0; x < d; x++) {
                            dva[kBase + x] += p * doa[qBase + x];
                            dqa[qBase + x] += scale * ds * ka[kBase + x];
                            dka[kBase + x] += scale * ds * qa[qBase + x];
                        }
                    }
                }
            }
        }
        store(dqa, dq);
        store(dka, dk);
        store(dva, dv);
    }

    /** Writes row-major values into a (possibly strided) host tensor. */
    private static void store(double[] values, Tensor t) {
        MemorySegment seg = t.segment();
        DType dtype = t.dtype();
        HostTensors.forEachOffset(t, (i, off) -> dtype.write(seg, off, (float) values[(int) i]));
    }
}
