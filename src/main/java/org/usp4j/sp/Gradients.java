package org.usp4j.sp;

import org.usp4j.tensor.Tensor;

/** dq [b, s, h, d], dk and dv [b, s, h_kv, d], in the dtype of q, k and v. */
public record Gradients(Tensor dq, Tensor dk, Tensor dv) {
}
