package org.usp4j.cuda;

/** Free and total memory of the current device, in bytes ({@code cudaMemGetInfo}). */
public record DeviceMemoryInfo(long freeBytes, long totalBytes) {
}
