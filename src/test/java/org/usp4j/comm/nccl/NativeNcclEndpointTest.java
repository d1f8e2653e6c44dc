package org.usp4j.comm.nccl;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;
import org.usp4j.bindings.nccl.ncclConfig_t;
import org.usp4j.nccl.Nccl;

/**
 * The config every split of {@link NativeNcclEndpoint} passes to {@code ncclCommSplit}, as NCCL reads it:
 * blocking and not sharing the parent's resources (its abort flag among them) whatever the parent's config,
 * every other field left to NCCL. Needs the NCCL library (symbols only), no GPU.
 */
class NativeNcclEndpointTest {

    @Test
    void splitsAreBlockingAndShareNothingWithTheirParent() {
        Nccl.library();
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment c = NativeNcclEndpoint.SPLIT_CONFIG.toNative(arena);
            assertEquals(96, ncclConfig_t.size(c));
            assertEquals(0xcafebeef, ncclConfig_t.magic(c));
            assertEquals(1, ncclConfig_t.blocking(c));
            assertEquals(0, ncclConfig_t.splitShare(c));
            for (long off : new long[] {20, 24, 28, 44}) { // cgaClusterSize, minCTAs, maxCTAs, trafficClass
                assertEquals(Integer.MIN_VALUE, c.get(ValueLayout.JAVA_INT, off), "offset " + off);
            }
            assertEquals(0L, ncclConfig_t.netName(c).address());
            assertEquals(0L, ncclConfig_t.commName(c).address());
        }
    }
}
