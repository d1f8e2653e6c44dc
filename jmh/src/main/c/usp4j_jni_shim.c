/*
 * The JNI side of the downcall-cost benchmark: the smallest JNI binding of the same three trivial
 * library functions that usp4j calls through FFM (ncclGetVersion, cudnnGetVersion,
 * cudaRuntimeGetVersion), resolved from the very same library files with dlopen/dlsym.
 * JavaCPP's presets link the CUDA driver (libcuda.so.1), which machines without a GPU lack, so this
 * shim is the JNI baseline there.
 */
#include <dlfcn.h>
#include <jni.h>
#include <stddef.h>

static int (*nccl_get_version)(int *);
static size_t (*cudnn_get_version)(void);
static int (*cuda_runtime_get_version)(int *);

static void *resolve(JNIEnv *env, jstring path, const char *symbol) {
    if (path == NULL) {
        return NULL;
    }
    const char *file = (*env)->GetStringUTFChars(env, path, NULL);
    void *lib = dlopen(file, RTLD_NOW | RTLD_GLOBAL);
    (*env)->ReleaseStringUTFChars(env, path, file);
    return lib == NULL ? NULL : dlsym(lib, symbol);
}

/* Returns a bit mask of the functions found: 1 nccl, 2 cudnn, 4 cudart. */
JNIEXPORT jint JNICALL Java_org_usp4j_jmh_JniShim_load(JNIEnv *env, jclass cls, jstring nccl, jstring cudnn,
                                                       jstring cudart) {
    (void) cls;
    nccl_get_version = (int (*)(int *)) resolve(env, nccl, "ncclGetVersion");
    cudnn_get_version = (size_t (*)(void)) resolve(env, cudnn, "cudnnGetVersion");
    cuda_runtime_get_version = (int (*)(int *)) resolve(env, cudart, "cudaRuntimeGetVersion");
    return (nccl_get_version ? 1 : 0) | (cudnn_get_version ? 2 : 0) | (cuda_runtime_get_version ? 4 : 0);
}

JNIEXPORT jint JNICALL Java_org_usp4j_jmh_JniShim_ncclGetVersion(JNIEnv *env, jclass cls) {
    (void) env; (void) cls;
    int version = 0;
    return nccl_get_version(&version) == 0 ? version : -1;
}

JNIEXPORT jlong JNICALL Java_org_usp4j_jmh_JniShim_cudnnGetVersion(JNIEnv *env, jclass cls) {
    (void) env; (void) cls;
    return (jlong) cudnn_get_version();
}

JNIEXPORT jint JNICALL Java_org_usp4j_jmh_JniShim_cudaRuntimeGetVersion(JNIEnv *env, jclass cls) {
    (void) env; (void) cls;
    int version = 0;
    return cuda_runtime_get_version(&version) == 0 ? version : -1;
}
