package org.usp4j.sp;

import org.usp4j.tensor.Tensor;

/** A whole attention forward in global order: out [b, S, h, d] in the input dtype, lse [b, h, S] F32 (null for linear attention). */
public record ForwardResult(Tensor out, Tensor lse) {
}
