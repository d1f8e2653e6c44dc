/*
 * usp4j entry header for the CUDA runtime bindings.
 *
 * jextract reads the real CUDA 13 runtime headers from the toolkit install (bindings/generate passes
 * -I "$CUDA_INCLUDE", default /usr/local/cuda/include); nothing of them is copied here. The
 * surface is filtered by cuda_runtime.args to what usp4j calls.
 *
 * CUDA_API_PER_THREAD_DEFAULT_STREAM stays undefined so that the plain (legacy default stream)
 * symbol names are bound, not the _ptds/_ptsz variants.
 */
#include <cuda_runtime_api.h>
