package org.usp4j.cuda;

/** PTX used by the GPU tests. */
final class GpuKernels {

    private GpuKernels() {
    }

    /**
     * {@code extern "C" __global__ void fill_affine(float* out, int n, float a, float b, long long offset)}
     * writing {@code out[i] = a * (i + offset) + b} for {@code i < n}: one parameter of each kind the
     * launcher marshals (pointer, int, float, 64-bit integer). PTX ISA 7.0 for sm_80, JIT-compiled
     * by the driver for newer GPUs.
     */
    static final String FILL_PTX = """
            .version 7.0
            .target sm_80
            .address_size 64

            .visible .entry fill_affine(
                .param .u64 out,
                .param .u32 n,
                .param .f32 a,
                .param .f32 b,
                .param .u64 offset
            )
            {
                .reg .pred %p<2>;
                .reg .f32 %f<5>;
                .reg .b32 %r<6>;
                .reg .b64 %rd<8>;

                ld.param.u64 %rd1, [out];
                ld.param.u32 %r2, [n];
                ld.param.f32 %f1, [a];
                ld.param.f32 %f2, [b];
                ld.param.u64 %rd2, [offset];
                mov.u32 %r3, %ctaid.x;
                mov.u32 %r4, %ntid.x;
                mov.u32 %r5, %tid.x;
                mad.lo.s32 %r1, %r3, %r4, %r5;
                setp.ge.s32 %p1, %r1, %r2;
                @%p1 bra DONE;
                cvta.to.global.u64 %rd3, %rd1;
                cvt.s64.s32 %rd4, %r1;
                add.s64 %rd5, %rd4, %rd2;
                cvt.rn.f32.s64 %f3, %rd5;
                fma.rn.f32 %f4, %f3, %f1, %f2;
                mul.wide.s32 %rd6, %r1, 4;
                add.s64 %rd7, %rd3, %rd6;
                st.global.f32 [%rd7], %f4;
            DONE:
                ret;
            }
            """;
}
