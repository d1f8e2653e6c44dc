// Element-wise kernels for the CUDA backend: strided copy with dtype conversion, fill, add, and the
// ring's log-sum-exp merge. Compiled to PTX by build-ptx (nvcc) and loaded at run time through the
// CUDA runtime's library API, so the GPU machine needs neither NVRTC nor the driver API.
//
// Tensors are described by up to 6 dimensions (leading ones padded with size 1) with strides in
// elements; the host merges dimensions that are contiguous in every operand first. dtype codes follow
// org.usp4j.tensor.DType's ordinals: 0 = F32, 1 = BF16, 2 = F16.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math_constants.h>

#define MAX_DIMS 6

struct Dims {
    long long d[MAX_DIMS];
};

__device__ __forceinline__ float load_as_float(const void* base, int dtype, long long i) {
    switch (dtype) {
        case 1: return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[i]);
        case 2: return __half2float(static_cast<const __half*>(base)[i]);
        default: return static_cast<const float*>(base)[i];
    }
}

__device__ __forceinline__ void store_from_float(void* base, int dtype, long long i, float v) {
    switch (dtype) {
        case 1: static_cast<__nv_bfloat16*>(base)[i] = __float2bfloat16_rn(v); break;
        case 2: static_cast<__half*>(base)[i] = __float2half_rn(v); break;
        default: static_cast<float*>(base)[i] = v; break;
    }
}

// Element offset of the linear index i (row-major over shape) under the given strides.
__device__ __forceinline__ long long strided_offset(long long i, const Dims& shape, const Dims& stride) {
    long long offset = 0;
#pragma unroll
    for (int k = MAX_DIMS - 1; k > 0; k--) {
        long long ik = i % shape.d[k];
        i /= shape.d[k];
        offset += ik * stride.d[k];
    }
    return offset + i * stride.d[0];
}

#define GRID_STRIDE_LOOP(i, n) \
    for (long long i = blockIdx.x * (long long) blockDim.x + threadIdx.x; i < (n); \
         i += (long long) blockDim.x * gridDim.x)

extern "C" __global__ void usp4j_copy(const void* src, int srcType, Dims srcStride,
                                      void* dst, int dstType, Dims dstStride, Dims shape, long long n) {
    GRID_STRIDE_LOOP(i, n) {
        float v = load_as_float(src, srcType, strided_offset(i, shape, srcStride));
        store_from_float(dst, dstType, strided_offset(i, shape, dstStride), v);
    }
}

extern "C" __global__ void usp4j_fill(void* dst, int dstType, Dims dstStride, Dims shape, long long n, float value) {
    GRID_STRIDE_LOOP(i, n) {
        store_from_float(dst, dstType, strided_offset(i, shape, dstStride), value);
    }
}

// dst += src, arithmetic in float32.
extern "C" __global__ void usp4j_add(void* dst, int dstType, Dims dstStride,
                                     const void* src, int srcType, Dims srcStride, Dims shape, long long n) {
    GRID_STRIDE_LOOP(i, n) {
        long long o = strided_offset(i, shape, dstStride);
        float v = load_as_float(dst, dstType, o) + load_as_float(src, srcType, strided_offset(i, shape, srcStride));
        store_from_float(dst, dstType, o, v);
    }
}

// Folds a block's partial attention (blockOut [b,s,h,d] any dtype, blockLse [b,h,s] f32) into the
// float32 accumulators (out [b,s,h,d], lse [b,h,s]) for the same query rows:
//   l = max(l1, l2) + log1p(exp(-|l1 - l2|)),  out = exp(l1 - l) out + exp(l2 - l) blockOut.
// One warp per (b, s, h) row: every lane reads the old lse before lane 0 overwrites it.
// rows = (b, s, h) as a 3-D shape; strides are given per tensor in (b, s, h, d) or (b, h, s) order.
extern "C" __global__ void usp4j_merge_attention(float* out, Dims outStride, float* lse, Dims lseStride,
                                                 const void* blockOut, int blockType, Dims blockStride,
                                                 const float* blockLse, Dims blockLseStride,
                                                 long long batch, long long seq, long long heads, long long headDim) {
    const int lane = threadIdx.x & 31;
    const long long warpsPerGrid = ((long long) gridDim.x * blockDim.x) >> 5;
    const long long rows = batch * seq * heads;
    for (long long row = (blockIdx.x * (long long) blockDim.x + threadIdx.x) >> 5; row < rows; row += warpsPerGrid) {
        long long h = row % heads;
        long long s = (row / heads) % seq;
        long long b = row / (heads * seq);
        long long lseAt = b * lseStride.d[0] + h * lseStride.d[1] + s * lseStride.d[2];
        float l1 = lse[lseAt];
        float l2 = blockLse[b * blockLseStride.d[0] + h * blockLseStride.d[1] + s * blockLseStride.d[2]];
        if (l2 == -CUDART_INF_F) {
            continue; // the block saw no key for this row: nothing to add
        }
        float w1, w2, l;
        if (l1 == -CUDART_INF_F) {
            w1 = 0.0f; w2 = 1.0f; l = l2;
        } else {
            float hi = fmaxf(l1, l2);
            l = hi + log1pf(expf(-fabsf(l1 - l2)));
            w1 = expf(l1 - l);
            w2 = expf(l2 - l);
        }
        long long outBase = b * outStride.d[0] + s * outStride.d[1] + h * outStride.d[2];
        long long blkBase = b * blockStride.d[0] + s * blockStride.d[1] + h * blockStride.d[2];
        for (long long x = lane; x < headDim; x += 32) {
            float o = w1 == 0.0f ? 0.0f : w1 * out[outBase + x * outStride.d[3]];
            out[outBase + x * outStride.d[3]] = o + w2 * load_as_float(blockOut, blockType, blkBase + x * blockStride.d[3]);
        }
        __syncwarp();
        if (lane == 0) {
            lse[lseAt] = l;
        }
    }
}
