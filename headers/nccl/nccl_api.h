/*
 * usp4j's own declarations of the NCCL C API subset it binds.
 *
 * Written for usp4j from NCCL's documented API (docs.nvidia.com/deeplearning/nccl, "API" and
 * "Types"); no vendor header is copied. Layouts and values follow NCCL 2.30.7; the comments give
 * the version that introduced each function so the Java side can mark it optional. The
 * native-interop tests check every value below against a real libnccl.so.2.
 */
#include <stddef.h>

/* Version this header describes: NCCL_VERSION(X,Y,Z) = X*10000 + Y*100 + Z (since 2.9). */
#define NCCL_MAJOR 2
#define NCCL_MINOR 30
#define NCCL_PATCH 7
#define NCCL_VERSION_CODE 23007

#define NCCL_UNIQUE_ID_BYTES 128
#define NCCL_SPLIT_NOCOLOR -1
/* Value of every unset int field of ncclConfig_t (INT_MIN); unset pointers are NULL. */
#define NCCL_CONFIG_UNDEF_INT (-2147483647 - 1)
/* ncclConfig_t.magic as set by NCCL_CONFIG_INITIALIZER. */
#define NCCL_API_MAGIC 0xcafebeef

typedef struct CUstream_st* cudaStream_t;
typedef struct ncclComm* ncclComm_t;

/* Opaque bootstrap handle; passed BY VALUE to the init functions. */
typedef struct { char internal[NCCL_UNIQUE_ID_BYTES]; } ncclUniqueId;

typedef enum {
  ncclSuccess            = 0,
  ncclUnhandledCudaError = 1,
  ncclSystemError        = 2,
  ncclInternalError      = 3,
  ncclInvalidArgument    = 4,
  ncclInvalidUsage       = 5,
  ncclRemoteError        = 6, /* 2.13 */
  ncclInProgress         = 7, /* 2.14 */
  ncclTimeout            = 8, /* 2.30; before 2.30, 8 was ncclNumResults */
  ncclNumResults         = 9
} ncclResult_t;

typedef enum {
  ncclInt8 = 0, ncclChar = 0,
  ncclUint8 = 1,
  ncclInt32 = 2, ncclInt = 2,
  ncclUint32 = 3,
  ncclInt64 = 4,
  ncclUint64 = 5,
  ncclFloat16 = 6, ncclHalf = 6,
  ncclFloat32 = 7, ncclFloat = 7,
  ncclFloat64 = 8, ncclDouble = 8,
  ncclBfloat16 = 9,   /* 2.10 */
  ncclFloat8e4m3 = 10, /* 2.24 */
  ncclFloat8e5m2 = 11  /* 2.24 */
} ncclDataType_t;

typedef enum {
  ncclSum = 0,
  ncclProd = 1,
  ncclMax = 2,
  ncclMin = 3,
  ncclAvg = 4 /* 2.10 */
} ncclRedOp_t;

/*
 * Communicator configuration, NCCL 2.30 layout (96 bytes on LP64). The library reads
 * min(size, its own sizeof) bytes and resets fields newer than `version`, so this layout also
 * works with older libraries (2.17-2.24 read 48 bytes) when size, magic and version are set.
 */
typedef struct {
  size_t size;                /* sizeof(ncclConfig_t) */
  unsigned int magic;         /* NCCL_API_MAGIC */
  unsigned int version;       /* NCCL_VERSION_CODE */
  int blocking;
  int cgaClusterSize;
  int minCTAs;
  int maxCTAs;
  const char* netName;
  int splitShare;
  int trafficClass;           /* 2.26 */
  const char* commName;       /* 2.27 */
  int collnetEnable;          /* 2.27 */
  int CTAPolicy;              /* 2.27 */
  int shrinkShare;            /* 2.27 */
  int nvlsCTAs;               /* 2.27 */
  int nChannelsPerNetPeer;    /* 2.28 */
  int nvlinkCentricSched;     /* 2.28 */
  int graphUsageMode;         /* 2.29 */
  int numRmaCtx;              /* 2.29 */
  int maxP2pPeers;            /* 2.30 */
  int graphStreamOrdering;    /* 2.30.5 */
} ncclConfig_t;

/* library */
ncclResult_t ncclGetVersion(int* version);
const char* ncclGetErrorString(ncclResult_t result);
const char* ncclGetLastError(ncclComm_t comm);                    /* 2.13 */
ncclResult_t ncclGetUniqueId(ncclUniqueId* uniqueId);

/* communicators */
ncclResult_t ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank);
ncclResult_t ncclCommInitRankConfig(ncclComm_t* comm, int nranks, ncclUniqueId commId, int rank,
                                    ncclConfig_t* config);       /* 2.14 */
ncclResult_t ncclCommInitAll(ncclComm_t* comms, int ndev, const int* devlist);
ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key, ncclComm_t* newcomm,
                           ncclConfig_t* config);                /* 2.18 */
ncclResult_t ncclCommFinalize(ncclComm_t comm);                   /* 2.14 */
ncclResult_t ncclCommDestroy(ncclComm_t comm);
ncclResult_t ncclCommAbort(ncclComm_t comm);                      /* 2.4 */
ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t* asyncError); /* 2.4 */
ncclResult_t ncclCommCount(const ncclComm_t comm, int* count);
ncclResult_t ncclCommCuDevice(const ncclComm_t comm, int* device);
ncclResult_t ncclCommUserRank(const ncclComm_t comm, int* rank);

/* memory */
ncclResult_t ncclMemAlloc(void** ptr, size_t size);               /* 2.19 */
ncclResult_t ncclMemFree(void* ptr);                              /* 2.19 */
ncclResult_t ncclCommRegister(const ncclComm_t comm, void* buff, size_t size, void** handle); /* 2.19 */
ncclResult_t ncclCommDeregister(const ncclComm_t comm, void* handle);                        /* 2.19 */

/* collectives and point-to-point (asynchronous on `stream`) */
ncclResult_t ncclAllGather(const void* sendbuff, void* recvbuff, size_t sendcount,
                           ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclAllReduce(const void* sendbuff, void* recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclReduceScatter(const void* sendbuff, void* recvbuff, size_t recvcount,
                               ncclDataType_t datatype, ncclRedOp_t op, ncclComm_t comm, cudaStream_t stream);
ncclResult_t ncclBroadcast(const void* sendbuff, void* recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm, cudaStream_t stream);
/* count elements to and from every peer; no in-place */
ncclResult_t ncclAlltoAll(const void* sendbuff, void* recvbuff, size_t count,
                          ncclDataType_t datatype, ncclComm_t comm, cudaStream_t stream); /* 2.28.3 */
ncclResult_t ncclSend(const void* sendbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream);      /* 2.7 */
ncclResult_t ncclRecv(void* recvbuff, size_t count, ncclDataType_t datatype, int peer,
                      ncclComm_t comm, cudaStream_t stream);      /* 2.7 */
ncclResult_t ncclGroupStart(void);
ncclResult_t ncclGroupEnd(void);
