package org.usp4j.cli;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.usp4j.io.SafetensorsDType;
import org.usp4j.io.SafetensorsFile;
import org.usp4j.io.TensorEntry;
import org.usp4j.kernel.AttentionShapes;
import org.usp4j.kernel.SequenceBoundaries;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * The tensors the {@code attention} command reads, checked: q [b, s, h, d], k and v [b, s, h_kv, d]
 * and, for the backward, do [b, s, h, d]; no empty dimension; one dtype for all (F32, BF16 or F16);
 * finite values unless the user allows others.
 * Mixed dtypes are refused rather than silently converted, so the output dtype is never a guess.
 * Packed variable-length sequences come as {@code cu_seqlens}, I32 [n + 1]: 0, strictly increasing,
 * the last equal to s, with b = 1 ({@code sequences} is null without it).
 */
record AttentionInputs(Tensor q, Tensor k, Tensor v, Tensor dout, AttentionShapes shapes, DType dtype,
                       SequenceBoundaries sequences) {

    static final String Q = "q";
    static final String K = "k";
    static final String V = "v";
    static final String DO = "do";
    static final String CU_SEQLENS = "cu_seqlens";

    /** Reads and checks the inputs' shapes and dtypes; {@code dout} is null unless {@code backward}. */
    static AttentionInputs read(SafetensorsFile file, boolean backward) {
        List<String> needed = new ArrayList<>(List.of(Q, K, V));
        if (backward) {
            needed.add(DO);
        }
        List<String> missing = needed.stream().filter(n -> !file.contains(n)).toList();
        if (!missing.isEmpty()) {
            throw new CommandFailure(file.path() + " has no tensor" + (missing.size() > 1 ? "s " : " ")
                    + String.join(", ", missing.stream().map(n -> "'" + n + "'").toList())
                    + (missing.contains(DO) ? " (--backward needs do)" : "")
                    + "; it has " + (file.names().isEmpty() ? "none" : String.join(", ", file.names())));
        }
        Tensor q = file.tensor(Q);
        Tensor k = file.tensor(K);
        Tensor v = file.tensor(V);
        Tensor dout = backward ? file.tensor(DO) : null;
        for (String name : needed) {
            Tensor t = file.tensor(name);
            if (t.rank() != 4) {
                throw new CommandFailure(name + " must have rank 4 [b, s, h, d], got shape " + Arrays.toString(t.shape()));
            }
            if (t.numel() == 0) {
                throw new CommandFailure(name + " has an empty dimension: shape " + Arrays.toString(t.shape()));
            }
            if (t.dtype() != q.dtype()) {
                throw new CommandFailure("q is " + q.dtype() + " but " + name + " is " + t.dtype()
                        + ": q, k, v" + (backward ? " and do" : "") + " must share one dtype");
            }
        }
        AttentionShapes shapes;
        try {
            shapes = AttentionShapes.of(q, k, v);
        } catch (IllegalArgumentException e) {
            throw new CommandFailure(e.getMessage(), e);
        }
        if (shapes.seqKv() != shapes.seqQ()) {
            throw new CommandFailure("q has sequence length " + shapes.seqQ() + " but k and v have " + shapes.seqKv()
                    + ": sequence-parallel self-attention needs them equal");
        }
        if (dout != null && !dout.sameShape(q)) {
            throw new CommandFailure("do has shape " + Arrays.toString(dout.shape()) + ", expected the shape of q "
                    + Arrays.toString(q.shape()));
        }
        return new AttentionInputs(q, k, v, dout, shapes, q.dtype(), sequences(file, shapes));
    }

    /** The file's cu_seqlens, checked against the shapes; null when it has none. */
    private static SequenceBoundaries sequences(SafetensorsFile file, AttentionShapes shapes) {
        TensorEntry entry = file.entry(CU_SEQLENS).orElse(null);
        if (entry == null) {
            return null;
        }
        if (entry.dtype() != SafetensorsDType.I32) {
            throw new CommandFailure(CU_SEQLENS + " must be I32, got " + entry.dtype());
        }
        if (entry.rank() != 1) {
            throw new CommandFailure(CU_SEQLENS + " must have rank 1 [n + 1], got shape " + Arrays.toString(entry.shape()));
        }
        if (shapes.batch() != 1) {
            throw new CommandFailure("packed sequences (" + CU_SEQLENS + ") need batch b = 1, got b = " + shapes.batch());
        }
        try {
            SequenceBoundaries sequences = SequenceBoundaries.of(file.int32s(CU_SEQLENS));
            sequences.requireTotal(shapes.seqQ());
            return sequences;
        } catch (IllegalArgumentException e) {
            throw new CommandFailure(e.getMessage(), e);
        }
    }

    /**
     * Refuses inputs holding NaN or infinite values, naming the tensor, the count and the first index: one
     * of them would spread to whole rows of every result. Reads every element once.
     */
    void requireFinite(Path file) {
        String[] names = {Q, K, V, DO};
        Tensor[] tensors = {q, k, v, dout};
        for (int i = 0; i < names.length; i++) {
            if (tensors[i] == null) {
                continue;
            }
            String name = names[i];
            NonFiniteValues.of(tensors[i]).ifPresent(bad -> {
                throw new CommandFailure(file + ": " + name + " has " + bad.count() + " non-finite value"
                        + (bad.count() == 1 ? "" : "s") + " (NaN or Inf), the first " + bad.describeFirst()
                        + "; attention would spread them to every result (pass --allow-nonfinite to run anyway)");
            });
        }
    }

    /** Checks that the mesh U x R and the layout can deal these tensors. */
    void checkMesh(int ulysses, int ring, LayoutOption layout) {
        long p = (long) ulysses * ring;
        long s = shapes.seqQ();
        String mesh = "--ulysses " + ulysses + " --ring " + ring;
        if (layout == LayoutOption.ZIGZAG && sequences != null) {
            for (int i = 0; i < sequences.count(); i++) {
                if (sequences.length(i) % (2 * p) != 0) {
                    throw new CommandFailure("the zigzag layout splits every packed sequence into 2*U*R = " + 2 * p
                            + " chunks, but sequence " + i + " has length " + sequences.length(i) + " (" + mesh + ")");
                }
            }
        }
        if (s % p != 0) {
            throw new CommandFailure("sequence length " + s + " is not divisible by U*R = " + p + " (" + mesh + ")");
        }
        if (layout == LayoutOption.ZIGZAG && s % (2 * p) != 0) {
            throw new CommandFailure("the zigzag layout needs the sequence length (" + s
                    + ") divisible by 2*U*R = " + 2 * p + " (" + mesh + ")");
        }
        long h = shapes.heads();
        long hkv = shapes.kvHeads();
        if (h % ulysses != 0) {
            throw new CommandFailure("query heads (" + h + ") are not divisible by --ulysses " + ulysses);
        }
        if (hkv % ulysses != 0 && ulysses % hkv != 0) {
            throw new CommandFailure("KV heads (" + hkv + ") and --ulysses " + ulysses
                    + " do not fit: one must divide the other");
        }
    }

    /** "b=1 s=4096 h=16 h_kv=16 d=64 BF16". */
    String describe() {
        return "b=" + shapes.batch() + " s=" + shapes.seqQ() + " h=" + shapes.heads() + " h_kv=" + shapes.kvHeads()
                + " d=" + shapes.headDim() + " " + dtype + (sequences == null ? ""
                : ", " + sequences.count() + " packed sequences");
    }
}
