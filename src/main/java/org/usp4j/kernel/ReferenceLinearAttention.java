package org.usp4j.kernel;

import java.lang.foreign.MemorySegment;
import java.util.Objects;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * Linear attention straight from its formulas ({@link LinearAttentionKernel}), in float64 on host
 * tensors: every (query, key) pair once, O(n^2 d) per head. The oracle the CPU kernel and LASP-2 are
 * checked against; small shapes only.
 */
public final class ReferenceLinearAttention implements LinearAttentionKernel {

    @Override
    public void forward(Tensor q, Tensor k, Tensor v, LinearMask mask, float scale, Tensor earlierState,
                        Tensor out) {
        Objects.requireNonNull(mask, "mask");
        Dims n = Dims.of(q, k, v);
        n.sh.requireQueryShaped("out", out);
        LinearAttentionKernel.requireState("earlierState", n.sh, earlierState);
        double[] qa = HostTensors.toDoubleArray(q);
        double[] ka = HostTensors.toDoubleArray(k);
        double[] va = HostTensors.toDoubleArray(v);
        double[] pa = earlierState == null ? null : HostTensors.toDoubleArray(earlierState);
        double[] oa = new double[qa.length];
        for (int b = 0; b < n.b; b++) {
            for (int h = 0; h < n.h; h++) {
                int kh = h / n.group;
                for (int i = 0; i < n.s; i++) {
                    int qi = n.q(b, i, h);
                    for (int j = 0; j < n.s; j++) {
                        double w = mask.weight(i, j);
                        if (w == 0) {
                            continue;
                        }
                        double c = w * scale * dot(qa, qi, ka, n.kv(b, j, kh), n.d);
                        axpy(oa, qi, c, va, n.kv(b, j, kh), n.d);
                    }
                    if (pa != null) {
                        // out_i += scale G^(i+1) q_i^T P
                        double e = scale * mask.decayOver(i + 1L);
                        for (int x = 0; x < n.d; x++) {
                            axpy(oa, qi, e * qa[qi + x], pa, n.state(b, kh, x), n.d);
                        }
                    }
                }
            }
        }
        store(oa, out);
    }

    @Override
    public void keyValueState(Tensor k, Tensor v, LinearMask mask, Tensor state) {
        Objects.requireNonNull(mask, "mask");
        Dims n = Dims.of(k, k, v);
        LinearAttentionKernel.requireState("state", n.sh, Objects.requireNonNull(state, "state"));
        double[] ka = HostTensors.toDoubleArray(k);
        double[] va = HostTensors.toDoubleArray(v);
        double[] sa = new double[(int) state.numel()];
        for (int b = 0; b < n.b; b++) {
            for (int kh = 0; kh < n.hkv; kh++) {
                for (int j = 0; j < n.s; j++) {
                    double f = mask.decayOver(n.s - 1L - j);
                    int kj = n.kv(b, j, kh);
                    for (int x = 0; x < n.d; x++) {
                        axpy(sa, n.state(b, kh, x), f * ka[kj + x], va, kj, n.d);
                    }
                }
            }
        }
        store(sa, state);
    }

    @Override
    public void queryGradientState(Tensor q, Tensor dout, LinearMask mask, Tensor state) {
        Objects.requireNonNull(mask, "mask");
        if (!q.sameShape(dout)) {
            throw new IllegalArgumentException("dout " + dout.describe() + " must be shaped like q " + q.describe());
        }
        long hkv = state.rank() == 4 ? state.size(1) : -1;
        if (hkv <= 0 || q.size(2) % hkv != 0) {
            throw new IllegalArgumentException("state " + state.describe() + " must be [b, h_kv, d, d] with h_kv "
                    + "dividing the query heads of " + q.describe());
        }
        int b0 = (int) q.size(0), s = (int) q.size(1), h = (int) q.size(2), d = (int) q.size(3);
        AttentionShapes sh = new AttentionShapes(b0, s, s, h, hkv, d);
        LinearAttentionKernel.requireState("state", sh, state);
        int group = (int) (h / hkv);
        double[] qa = HostTensors.toDoubleArray(q);
        double[] da = HostTensors.toDoubleArray(dout);
        double[] sa = new double[(int) state.numel()];
        for (int b = 0; b < b0; b++) {
            for (int hq = 0; hq < h; hq++) {
                for (int i = 0; i < s; i++) {
                    double g = mask.decayOver(i);
                    int qi = ((b * s + i) * h + hq) * d;
                    for (int x = 0; x < d; x++) {
                        axpy(sa, ((b * (int) hkv + hq / group) * d + x) * d, g * qa[qi + x], da, qi, d);
                    }
                }
            }
        }
        store(sa, state);
    }

    @Override
    public void backward(Tensor q, Tensor k, Tensor v, Tensor dout, LinearMask mask, float scale,
                         Tensor earlierState, Tensor laterGradientState, Tensor dq, Tensor dk, Tensor dv) {
        Objects.requireNonNull(mask, "mask");
        Dims n = Dims.of(q, k, v);
        n.sh.requireQueryShaped("dout", dout);
        n.sh.requireQueryShaped("dq", dq);
        n.sh.requireKvShaped("dk", dk);
        n.sh.requireKvShaped("dv", dv);
        LinearAttentionKernel.requireState("earlierState", n.sh, earlierState);
        LinearAttentionKernel.requireState("laterGradientState", n.sh, laterGradientState);
        double[] qa = HostTensors.toDoubleArray(q);
        double[] ka = HostTensors.toDoubleArray(k);
        double[] va = HostTensors.toDoubleArray(v);
        double[] doa = HostTensors.toDoubleArray(dout);
        double[] pa = earlierState == null ? null : HostTensors.toDoubleArray(earlierState);
        double[] la = laterGradientState == null ? null : HostTensors.toDoubleArray(laterGradientState);
        double[] dqa = new double[qa.length];
        double[] dka = new double[ka.length];
        double[] dva = new double[va.length];
        for (int b = 0; b < n.b; b++) {
            for (int h = 0; h < n.h; h++) {
                int kh = h / n.group;
                for (int i = 0; i < n.s; i++) {
                    int qi = n.q(b, i, h);
                    for (int j = 0; j < n.s; j++) {
                        double w = mask.weight(i, j);
                        if (w == 0) {
                            continue;
                        }
                        int kj = n.kv(b, j, kh);
                        double dp = w * scale * dot(doa, qi, va, kj, n.d); // d out_i / d (q_i . k_j) weight
                        double sc = w * scale * dot(qa, qi, ka, kj, n.d);
                        axpy(dqa, qi, dp, ka, kj, n.d);
                        axpy(dka, kj, dp, qa, qi, n.d);
                        axpy(dva, kj, sc, doa, qi, n.d);
                    }
                    if (pa != null) {
                        // dq_i += scale G^(i+1) P do_i
                        double e = scale * mask.decayOver(i + 1L);
                        for (int x = 0; x < n.d; x++) {
                            dqa[qi + x] += e * dot(pa, n.state(b, kh, x), doa, qi, n.d);
                        }
                    }
                }
            }
            if (la != null) {
                for (int kh = 0; kh < n.hkv; kh++) {
                    for (int j = 0; j < n.s; j++) {
                        // dk_j += scale G^(n-j) L v_j; dv_j += scale G^(n-j) L^T k_j
                        double f = scale * mask.decayOver((long) n.s - j);
                        int kj = n.kv(b, j, kh);
                        for (int x = 0; x < n.d; x++) {
                            int row = n.state(b, kh, x);
                            dka[kj + x] += f * dot(la, row, va, kj, n.d);
                            axpy(dva, kj, f * ka[kj + x], la, row, n.d);
                        }
                    }
                }
            }
        }
        store(dqa, dq);
        store(dka, dk);
        store(dva, dv);
    }

    @Override
    public void addState(Tensor dst, Tensor src, float factor) {
        if (!dst.sameShape(src) || dst.dtype() != DType.F32 || src.dtype() != DType.F32) {
            throw new IllegalArgumentException("addState needs two F32 states of one shape, got " + dst.describe()
                    + " and " + src.describe());
        }
        double[] d = HostTensors.toDoubleArray(dst);
        double[] s = HostTensors.toDoubleArray(src);
        for (int i = 0; i < d.length; i++) {
            d[i] += factor * s[i];
        }
        store(d, dst);
    }

    /** Row-major index arithmetic of the dense copies. */
    private record Dims(AttentionShapes sh, int b, int s, int h, int hkv, int d, int group) {
        static Dims of(Tensor q, Tensor k, Tensor v) {
            AttentionShapes sh = LinearAttentionKernel.shapes(q, k, v);
            return new Dims(sh, (int) sh.batch(), (int) sh.seqQ(), (int) sh.heads(), (int) sh.kvHeads(),
                    (int) sh.headDim(), (int) sh.groupSize());
        }

        int q(int bi, int i, int hi) {
            return ((bi * s + i) * h + hi) * d;
        }

        int kv(int bi, int j, int kh) {
            return ((bi * s + j) * hkv + kh) * d;
        }

        int state(int bi, int kh, int x) {
            return ((bi * hkv + kh) * d + x) * d;
        }
    }

    private static double dot(double[] a, int ai, double[] b, int bi, int n) {
        double sum = 0;
        for (int x = 0; x < n; x++) {
            sum += a[ai + x] * b[bi + x];
        }
        return sum;
    }

    /** y[yi ..] += c * x[xi ..] over n elements. */
    private static void axpy(double[] y, int yi, double c, double[] x, int xi, int n) {
        for (int t = 0; t < n; t++) {
            y[yi + t] += c * x[xi + t];
        }
    }

    private static void store(double[] values, Tensor t) {
        MemorySegment seg = t.segment();
        DType dtype = t.dtype();
        HostTensors.forEachOffset(t, (i, off) -> dtype.write(seg, off, (float) values[(int) i]));
    }
}
