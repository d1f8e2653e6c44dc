package org.usp4j.gpu;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;
import org.usp4j.cudnn.DataType;
import org.usp4j.cudnn.PointwiseMode;
import org.usp4j.cudnn.ReductionOperator;

/**
 * A cuDNN operation graph as plain data: tensors and operations in topological order. Building it
 * needs no native code, so its structure is unit-tested anywhere; {@code CudnnGraphCompiler} lowers
 * it to backend descriptors.
 */
public final class GraphSpec {

    /**
     * One tensor of the graph. Virtual tensors live only inside the fused kernel; by-value tensors
     * are scalars whose value is passed (from host memory) at execution time.
     */
    public record Tensor(long uid, String name, DataType type, long[] dims, long[] strides, boolean isVirtual, boolean byValue) {
        public Tensor {
            if (dims.length != strides.length) {
                throw new IllegalArgumentException(name + ": dims and strides differ in rank");
            }
            dims = dims.clone();
            strides = strides.clone();
        }

        @Override
        public long[] dims() {
            return dims.clone();
        }

        @Override
        public long[] strides() {
            return strides.clone();
        }

        @Override
        public String toString() {
            return name + "#" + uid + "(" + type + Arrays.toString(dims) + "/" + Arrays.toString(strides)
                    + (isVirtual ? ", virtual" : "") + (byValue ? ", by value" : "") + ")";
        }
    }

    /** An operation of the graph. */
    public sealed interface Op {
        List<Tensor> inputs();

        Tensor output();
    }

    /** y = mode(x[, b[, t]]); {@code axis} only for GEN_INDEX. */
    public record Pointwise(PointwiseMode mode, DataType computeType, Long axis, Tensor x, Tensor b, Tensor t, Tensor y) implements Op {
        @Override
        public List<Tensor> inputs() {
            List<Tensor> in = new ArrayList<>(3);
            in.add(x);
            if (b != null) {
                in.add(b);
            }
            if (t != null) {
                in.add(t);
            }
            return in;
        }

        @Override
        public Tensor output() {
            return y;
        }
    }

    /**
     * c = a @ b over the last two dimensions, batched (and head-broadcast) over the first two. The
     * optional INT32 [b,1,1,1] overrides bound the rows (m), columns (n) and reduction length (k) per
     * batch entry, as padding masks need.
     */
    public record Matmul(Tensor a, Tensor b, Tensor c, Tensor mOverride, Tensor nOverride, Tensor kOverride) implements Op {
        public Matmul(Tensor a, Tensor b, Tensor c) {
            this(a, b, c, null, null, null);
        }

        @Override
        public List<Tensor> inputs() {
            List<Tensor> in = new ArrayList<>(List.of(a, b));
            for (Tensor t : new Tensor[] {mOverride, nOverride, kOverride}) {
                if (t != null) {
                    in.add(t);
                }
            }
            return in;
        }

        @Override
        public Tensor output() {
            return c;
        }
    }

    /** y = reduce(x) over the dimensions where y has size 1 and x does not. */
    public record Reduction(ReductionOperator op, Tensor x, Tensor y) implements Op {
        @Override
        public List<Tensor> inputs() {
            return List.of(x);
        }

        @Override
        public Tensor output() {
            return y;
        }
    }

    /** y = x seen with other dims and strides (used as a virtual transpose). */
    public record Reshape(Tensor x, Tensor y) implements Op {
        @Override
        public List<Tensor> inputs() {
            return List.of(x);
        }

        @Override
        public Tensor output() {
            return y;
        }
    }

    private final String name;
    private final List<Tensor> tensors;
    private final List<Op> ops;

    /** A graph of these tensors and operations (gpu.sdpa builds the attention ones). */
    public GraphSpec(String name, List<Tensor> tensors, List<Op> ops) {
        this.name = name;
        this.tensors = List.copyOf(tensors);
        this.ops = List.copyOf(ops);
    }

    public String name() {
        return name;
    }

    public List<Tensor> tensors() {
        return tensors;
    }

    public List<Op> ops() {
        return ops;
    }

    /** The tensors the caller binds at execution time (non-virtual), in uid order. */
    public List<Tensor> boundTensors() {
        List<Tensor> bound = new ArrayList<>();
        for (Tensor t : tensors) {
            if (!t.isVirtual()) {
                bound.add(t);
            }
        }
        bound.sort((a, b) -> Long.compare(a.uid(), b.uid()));
        return Collections.unmodifiableList(bound);
    }

    public Tensor tensor(long uid) {
        for (Tensor t : tensors) {
            if (t.uid() == uid) {
                return t;
            }
        }
        throw new IllegalArgumentException("graph " + name + " has no tensor with uid " + uid);
    }

    @Override
    public String toString() {
        StringBuilder sb = new StringBuilder("graph ").append(name).append(" (").append(ops.size()).append(" ops)\n");
        for (Op op : ops) {
            sb.append("  ").append(op.getClass().getSimpleName());
            if (op instanceof Pointwise p) {
                sb.append(' ').append(p.mode());
            } else if (op instanceof Reduction r) {
                sb.append(' ').append(r.op());
            }
            sb.append(' ').append(op.inputs().stream().map(Tensor::name).toList()).append(" -> ").append(op.output().name()).append('\n');
        }
        return sb.toString();
    }
}
