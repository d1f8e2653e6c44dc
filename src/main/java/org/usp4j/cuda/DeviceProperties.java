package org.usp4j.cuda;

/**
 * What usp4j needs to know about a GPU.
 *
 * @param device                       the device ordinal
 * @param name                         the marketing name, e.g. "NVIDIA H100 80GB HBM3"
 * @param computeCapabilityMajor       e.g. 9 for sm_90
 * @param computeCapabilityMinor       e.g. 0 for sm_90
 * @param totalMemoryBytes             global memory in bytes
 * @param multiprocessorCount          number of SMs
 * @param maxSharedMemoryPerBlockOptin shared memory a kernel may opt in to per block, in bytes
 */
public record DeviceProperties(int device, String name, int computeCapabilityMajor, int computeCapabilityMinor,
                               long totalMemoryBytes, int multiprocessorCount, int maxSharedMemoryPerBlockOptin) {

    /** "major.minor", e.g. "9.0". */
    public String computeCapability() {
        return computeCapabilityMajor + "." + computeCapabilityMinor;
    }

    /** The PTX/SASS target name, e.g. "sm_90". */
    public String smName() {
        return "sm_" + computeCapabilityMajor + computeCapabilityMinor;
    }
}
