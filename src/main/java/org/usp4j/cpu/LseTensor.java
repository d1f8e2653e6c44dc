package org.usp4j.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import org.usp4j.tensor.Tensor;

/** Element access to a float32 [b, h, s] log-sum-exp tensor with arbitrary strides (host memory). */
final class LseTensor {

    private static final ValueLayout.OfFloat FLOAT_LE =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final MemorySegment segment;
    private final long base;
    private final long batchStride;
    private final long headStride;
    private final long seqStride;

    LseTensor(Tensor t) {
        this.segment = t.segment();
        this.base = t.offset() * Float.BYTES;
        this.batchStride = t.stride(0) * Float.BYTES;
        this.headStride = t.stride(1) * Float.BYTES;
        this.seqStride = t.stride(2) * Float.BYTES;
    }

    float get(int b, int h, int s) {
        return segment.get(FLOAT_LE, base + b * batchStride + h * headStride + s * seqStride);
    }

    void set(int b, int h, int s, float value) {
        segment.set(FLOAT_LE, base + b * batchStride + h * headStride + s * seqStride, value);
    }
}
