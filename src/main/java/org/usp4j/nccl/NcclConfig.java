package org.usp4j.nccl;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import org.usp4j.bindings.nccl.NcclApi;
import org.usp4j.bindings.nccl.ncclConfig_t;

/**
 * Communicator options ({@code ncclConfig_t}). Every field left at {@link #UNSET} keeps NCCL's
 * default, as {@code NCCL_CONFIG_INITIALIZER} does.
 *
 * @param blocking       1 = calls block until done (NCCL's default), 0 = non-blocking (calls may
 *                       return ncclInProgress; poll {@link NcclCommunicator#asyncError()})
 * @param cgaClusterSize CUDA thread block cluster size (0..8)
 * @param minCtas        minimum number of CTAs (channels) NCCL uses
 * @param maxCtas        maximum number of CTAs NCCL uses
 * @param splitShare     1 = a split child shares the parent's resources
 * @param netName        network module to use (e.g. "Socket", "IB"), or null
 * @param commName       a name shown in NCCL's logs, or null (NCCL 2.27+, ignored before)
 */
public record NcclConfig(int blocking, int cgaClusterSize, int minCtas, int maxCtas, int splitShare,
                         String netName, String commName) {

    /** {@code NCCL_CONFIG_UNDEF_INT} (INT_MIN): leave the field to NCCL. */
    public static final int UNSET = Integer.MIN_VALUE;

    private static final NcclConfig DEFAULTS = new NcclConfig(UNSET, UNSET, UNSET, UNSET, UNSET, null, null);

    public NcclConfig {
        requireFlag("blocking", blocking);
        requireFlag("splitShare", splitShare);
        if (cgaClusterSize != UNSET && (cgaClusterSize < 0 || cgaClusterSize > 8)) {
            throw new IllegalArgumentException("cgaClusterSize must be in 0..8, got " + cgaClusterSize);
        }
        if (minCtas != UNSET && minCtas < 1 || maxCtas != UNSET && maxCtas < 1) {
            throw new IllegalArgumentException("CTA counts must be >= 1, got min " + minCtas + ", max " + maxCtas);
        }
        if (minCtas != UNSET && maxCtas == UNSET) {
            // NCCL (2.14 to 2.30) checks minCTAs > maxCTAs before it defaults the unset maxCTAs (INT_MIN), so it
            // refuses this config with ncclInvalidArgument
            throw new IllegalArgumentException("minCtas " + minCtas + " needs maxCtas as well (NCCL refuses a minimum "
                    + "without a maximum)");
        }
        if (minCtas != UNSET && maxCtas != UNSET && minCtas > maxCtas) {
            throw new IllegalArgumentException("minCtas " + minCtas + " exceeds maxCtas " + maxCtas);
        }
    }

    /** Everything left to NCCL. */
    public static NcclConfig defaults() {
        return DEFAULTS;
    }

    public NcclConfig withBlocking(boolean value) {
        return new NcclConfig(value ? 1 : 0, cgaClusterSize, minCtas, maxCtas, splitShare, netName, commName);
    }

    public NcclConfig withCgaClusterSize(int value) {
        return new NcclConfig(blocking, value, minCtas, maxCtas, splitShare, netName, commName);
    }

    public NcclConfig withCtas(int min, int max) {
        return new NcclConfig(blocking, cgaClusterSize, min, max, splitShare, netName, commName);
    }

    public NcclConfig withSplitShare(boolean value) {
        return new NcclConfig(blocking, cgaClusterSize, minCtas, maxCtas, value ? 1 : 0, netName, commName);
    }

    public NcclConfig withNetName(String value) {
        return new NcclConfig(blocking, cgaClusterSize, minCtas, maxCtas, splitShare, value, commName);
    }

    public NcclConfig withCommName(String value) {
        return new NcclConfig(blocking, cgaClusterSize, minCtas, maxCtas, splitShare, netName, value);
    }

    /** True unless {@code blocking} was set to 0. */
    public boolean isBlocking() {
        return blocking != 0;
    }

    /**
     * The native struct, laid out as NCCL 2.30 defines it (96 bytes) with size, magic and version
     * set: NCCL copies min(size, its own size) and resets fields newer than the version it reads,
     * so older libraries accept it too. Strings live in {@code arena}.
     */
    public MemorySegment toNative(Arena arena) {
        MemorySegment c = ncclConfig_t.allocate(arena);
        ncclConfig_t.size(c, ncclConfig_t.layout().byteSize());
        ncclConfig_t.magic(c, NcclApi.NCCL_API_MAGIC());
        ncclConfig_t.version(c, NcclApi.NCCL_VERSION_CODE());
        int undef = NcclApi.NCCL_CONFIG_UNDEF_INT();
        ncclConfig_t.blocking(c, blocking);
        ncclConfig_t.cgaClusterSize(c, cgaClusterSize);
        ncclConfig_t.minCTAs(c, minCtas);
        ncclConfig_t.maxCTAs(c, maxCtas);
        ncclConfig_t.netName(c, netName == null ? MemorySegment.NULL : arena.allocateFrom(netName));
        ncclConfig_t.splitShare(c, splitShare);
        ncclConfig_t.trafficClass(c, undef);
        ncclConfig_t.commName(c, commName == null ? MemorySegment.NULL : arena.allocateFrom(commName));
        ncclConfig_t.collnetEnable(c, undef);
        ncclConfig_t.CTAPolicy(c, undef);
        ncclConfig_t.shrinkShare(c, undef);
        ncclConfig_t.nvlsCTAs(c, undef);
        ncclConfig_t.nChannelsPerNetPeer(c, undef);
        ncclConfig_t.nvlinkCentricSched(c, undef);
        ncclConfig_t.graphUsageMode(c, undef);
        ncclConfig_t.numRmaCtx(c, undef);
        ncclConfig_t.maxP2pPeers(c, undef);
        ncclConfig_t.graphStreamOrdering(c, undef);
        return c;
    }

    private static void requireFlag(String name, int value) {
        if (value != UNSET && value != 0 && value != 1) {
            throw new IllegalArgumentException(name + " must be 0, 1 or UNSET, got " + value);
        }
    }
}
