package org.usp4j.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.time.Duration;
import java.lang.foreign.ValueLayout;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.usp4j.cuda.CudaStream;
import org.usp4j.nccl.NcclCommunicator;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * The caller's memory and handles, as a framework passes them: results land in the caller's host
 * segments (views into one buffer of its own, nothing written around them); usp4j never frees or closes
 * what it did not create, so the caller's arena closes exactly once, before or after the world; memory
 * freed by the caller is refused cleanly; device memory is an address, a size and a device; a caller's
 * CUDA stream and NCCL communicator are borrowed (checked here without a GPU).
 */
class ZeroCopyInteropTest {

    private static final long B = 1, S = 16, H = 4, D = 8;
    private static final Mesh MESH = new Mesh(1, 2);
    private static final byte GUARD = (byte) 0xA5;

    @Test
    void resultsLandInTheCallersBufferAndNothingAroundThem() {
        AttentionOptions options = AttentionOptions.defaults().withCausal(true).withLayout(SequenceLayout.ZIGZAG);
        long sl = S / MESH.size();
        long bytes = B * sl * H * D * Float.BYTES;
        try (Arena arena = Arena.ofShared()) {
            Tensor q = GlobalAttention.random(arena, DType.F32, 1, B, S, H, D);
            Tensor k = GlobalAttention.random(arena, DType.F32, 2, B, S, H, D);
            Tensor v = GlobalAttention.random(arena, DType.F32, 3, B, S, H, D);
            Tensor dout = GlobalAttention.random(arena, DType.F32, 4, B, S, H, D);
            Tensor out = Tensor.allocate(arena, DType.F32, B, S, H, D);
            Tensor dq = Tensor.allocate(arena, DType.F32, B, S, H, D);
            Tensor dk = Tensor.allocate(arena, DType.F32, B, S, H, D);
            Tensor dv = Tensor.allocate(arena, DType.F32, B, S, H, D);
            // Per rank, one buffer of the caller's: guard | out | guard | dq | guard | dk | guard | dv | guard.
            MemorySegment[] buffers = new MemorySegment[MESH.size()];
            for (int r = 0; r < buffers.length; r++) {
                buffers[r] = arena.allocate(4 * bytes + 5 * 64L, 64).fill(GUARD);
            }
            try (InProcessWorld world = Usp4j.cpuWorld(MESH.size())) {
                world.run(rank -> {
                    MemorySegment buffer = buffers[rank.rank()];
                    Tensor[] results = new Tensor[4];
                    for (int i = 0; i < 4; i++) {
                        results[i] = Tensor.host(buffer.asSlice(64 + i * (bytes + 64), bytes), DType.F32, B, sl, H, D);
                    }
                    try (AttentionLayer layer = rank.newAttention(MESH, options)) {
                        int me = rank.rank();
                        layer.forward(GlobalAttention.shard(q, options.layout(), MESH, me, arena),
                                GlobalAttention.shard(k, options.layout(), MESH, me, arena),
                                GlobalAttention.shard(v, options.layout(), MESH, me, arena), results[0]);
                        layer.backward(GlobalAttention.shard(dout, options.layout(), MESH, me, arena),
                                results[1], results[2], results[3]);
                    }
                    Tensor[] global = {out, dq, dk, dv};
                    for (int i = 0; i < 4; i++) {
                        GlobalAttention.unshard(results[i], global[i], options.layout(), MESH, rank.rank());
                    }
                    return null;
                });
            }
            for (MemorySegment buffer : buffers) {
                for (int i = 0; i < 5; i++) {
                    MemorySegment guard = buffer.asSlice(i * (bytes + 64), 64);
                    for (long j = 0; j < guard.byteSize(); j++) {
                        assertEquals(GUARD, guard.get(ValueLayout.JAVA_BYTE, j),
                                "byte " + j + " of guard " + i + " was overwritten");
                    }
                }
            }
            GlobalAttention.Reference ref = GlobalAttention.reference(q, k, v, dout, options, arena);
            assertTrue(HostTensors.relativeError(out, ref.out()) <= 1e-4, "out");
            assertTrue(HostTensors.relativeError(dq, ref.dq()) <= 1e-4, "dq");
            assertTrue(HostTensors.relativeError(dk, ref.dk()) <= 1e-4, "dk");
            assertTrue(HostTensors.relativeError(dv, ref.dv()) <= 1e-4, "dv");
        }
    }

    @Test
    void theCallersArenaClosesOnceWhetherBeforeOrAfterTheWorld() {
        for (boolean arenaFirst : List.of(false, true)) {
            Arena arena = Arena.ofShared();
            InProcessWorld world = Usp4j.cpuWorld(MESH.size());
            List<AttentionLayer> layers = world.run(rank -> {
                AttentionLayer layer = rank.newAttention(MESH, AttentionOptions.defaults());
                long sl = S / MESH.size();
                Tensor x = GlobalAttention.random(arena, DType.F32, 10 + rank.rank(), B, sl, H, D);
                layer.forward(x, x, x, Tensor.allocate(arena, DType.F32, B, sl, H, D));
                return layer; // holds saved state that references the caller's x
            });
            assertTrue(layers.getFirst().hasSavedState());
            if (arenaFirst) {
                arena.close(); // the caller frees its memory while usp4j still references it
                world.close(); // frees usp4j's own state only: no access to the freed memory, no crash
            } else {
                world.close();
                assertTrue(arena.scope().isAlive(), "usp4j closed the caller's arena");
                arena.close(); // would throw had usp4j closed it already
            }
            world.close();
            for (AttentionLayer layer : layers) {
                layer.close(); // closed with the world: idempotent
                assertThrows(IllegalStateException.class, layer::discardSavedState);
            }
            assertFalse(arena.scope().isAlive());
        }
    }

    @Test
    void resultBuffersFreedByTheCallerAreRefusedBeforeAnyWork() {
        long sl = S / MESH.size();
        try (Arena arena = Arena.ofShared(); InProcessWorld world = Usp4j.cpuWorld(MESH.size())) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> world.run(rank -> {
                try (AttentionLayer layer = rank.newAttention(MESH, AttentionOptions.defaults())) {
                    Tensor x = GlobalAttention.random(arena, DType.F32, 20 + rank.rank(), B, sl, H, D);
                    Arena gone = Arena.ofShared();
                    Tensor out = Tensor.allocate(gone, DType.F32, B, sl, H, D);
                    gone.close();
                    layer.forward(x, x, x, out);
                }
                return null;
            }));
            assertTrue(e.getMessage().startsWith("out F32[1, 8, 4, 8]@host views freed memory"), e::getMessage);
        }
    }

    @Test
    void deviceMemoryIsAnAddressASizeAndADevice() {
        DevicePointer memory = new DevicePointer(0x7f00_0000_0000L, 4096, 1);
        Tensor t = Tensor.device(memory, DType.BF16, 2, 8, 4, 32);
        assertTrue(t.isDevice());
        assertFalse(t.isHost());
        assertEquals(memory, t.devicePointer());
        assertEquals(0x7f00_0000_0000L + 8 * 4 * 32 * 2, t.slice(0, 1, 1).contiguousDevicePointer().address());
        assertThrows(IllegalStateException.class, t::segment);
        assertThrows(IndexOutOfBoundsException.class, () -> Tensor.device(memory, DType.F32, 2, 8, 4, 32));
        assertEquals("device address is null",
                assertThrows(IllegalArgumentException.class, () -> new DevicePointer(0, 16, 0)).getMessage());
        assertEquals("negative device byte size: -1",
                assertThrows(IllegalArgumentException.class, () -> new DevicePointer(64, -1, 0)).getMessage());
        assertEquals("negative device ordinal: -2",
                assertThrows(IllegalArgumentException.class, () -> new DevicePointer(64, 16, -2)).getMessage());
    }

    @Test
    void aBorrowedStreamIsNeverDestroyed() {
        // Not a stream at all: any native call on it would fail (or crash), so closing proves none is made.
        CudaStream stream = CudaStream.borrow(0xdead_beefL);
        assertTrue(stream.isBorrowed());
        assertEquals(0xdead_beefL, stream.handle().address());
        stream.close();
        stream.close();
        assertThrows(IllegalStateException.class, stream::handle);
        CudaStream legacy = CudaStream.borrow(MemorySegment.NULL);
        assertEquals(0, legacy.handle().address());
        legacy.close();
        assertThrows(IllegalArgumentException.class, () -> CudaStream.borrow((MemorySegment) null));
    }

    @Test
    void ncclHandlesAreCheckedBeforeAnyNativeCall() {
        assertEquals("the NCCL communicator handle is NULL (0); pass an initialised ncclComm_t",
                assertThrows(IllegalArgumentException.class, () -> new NcclHandles(0, 0, 0)).getMessage());
        assertEquals("CUDA device must be >= 0, got -1",
                assertThrows(IllegalArgumentException.class, () -> new NcclHandles(0x10, 0, -1)).getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> NcclHandles.of(MemorySegment.NULL, MemorySegment.NULL, 0));
        NcclHandles handles = NcclHandles.of(MemorySegment.ofAddress(0xabc0), MemorySegment.ofAddress(0x5000), 3);
        assertEquals(new NcclHandles(0xabc0, 0x5000, 3), handles);
        assertEquals("NcclHandles[communicator 0xabc0, stream 0x5000, device 3]", handles.toString());
        assertThrows(IllegalArgumentException.class, () -> NcclCommunicator.borrow(MemorySegment.NULL));
        // A bad timeout is refused before anything native: garbage handles would crash the JVM if touched.
        NcclHandles garbage = new NcclHandles(0xdead_beefL, 0xbad_cafeL, 0);
        assertEquals("timeout must be positive, got PT0S",
                assertThrows(IllegalArgumentException.class, () -> Usp4j.ncclRank(garbage, Duration.ZERO)).getMessage());
        assertThrows(NullPointerException.class, () -> Usp4j.ncclRank(garbage, null));
    }

    @Test
    void anNcclRankWithoutAGpuIsRefusedBeforeTheHandlesAreTouched() {
        assumeTrue(Usp4j.cudaProblem().isPresent(), "a GPU is present");
        // Garbage handles: dereferencing them would crash the JVM, so a clean exception shows they were not.
        BackendUnavailableException e = assertThrows(BackendUnavailableException.class,
                () -> Usp4j.ncclRank(new NcclHandles(0xdead_beefL, 0xbad_cafeL, 0)));
        assertTrue(e.getMessage().startsWith("an NCCL rank needs the CUDA backend"), e::getMessage);
    }
}
