package org.usp4j.nccl;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.usp4j.cuda.Cuda;
import org.usp4j.cuda.CudaMemory;
import org.usp4j.cuda.CudaStream;
import org.usp4j.cuda.DeviceBuffer;

/** A one-rank communicator on device 0; skipped where the runtime sees no device. */
@Tag("gpu")
class NcclGpuTest {

    @BeforeEach
    void requireDevice() {
        assumeTrue(Cuda.isDeviceAvailable(), "no CUDA device");
        Cuda.setDevice(0);
    }

    @Test
    void singleRankCommunicatorRunsCollectivesAndSplits() {
        int n = 4096;
        try (var comm = NcclCommunicator.initRank(1, Nccl.uniqueId(), 0); var stream = CudaStream.create();
             var a = DeviceBuffer.allocate(4L * n); var b = DeviceBuffer.allocate(4L * n); Arena arena = Arena.ofConfined()) {
            assertEquals(1, comm.size());
            assertEquals(0, comm.rank());
            assertEquals(0, comm.cudaDevice());
            MemorySegment host = arena.allocate(4L * n);
            for (int i = 0; i < n; i++) {
                host.setAtIndex(ValueLayout.JAVA_FLOAT, i, i);
            }
            CudaMemory.copyToDevice(host, a.pointer());
            comm.allReduce(a.pointer(), b.pointer(), n, NcclDataType.FLOAT32, NcclRedOp.SUM, stream);
            Nccl.group(() -> {
                comm.send(b.pointer(), n, NcclDataType.FLOAT32, 0, stream);
                comm.recv(a.pointer(), n, NcclDataType.FLOAT32, 0, stream);
            });
            stream.synchronize();
            MemorySegment out = arena.allocate(4L * n);
            CudaMemory.copyToHost(a.pointer(), out);
            assertEquals(-1L, host.mismatch(out));
            assertTrue(comm.asyncError().isEmpty());
            try (var child = comm.split(0, 0).orElseThrow()) {
                assertEquals(1, child.size());
            }
            assertTrue(comm.split(NcclCommunicator.NO_COLOR, 0).isEmpty());
            assertThrows(IllegalArgumentException.class,
                    () -> comm.allGather(a.pointer(), b.pointer().slice(0, 4), 2, NcclDataType.FLOAT32, stream));
            assertThrows(IllegalArgumentException.class, () -> comm.send(a.pointer(), 1, NcclDataType.FLOAT32, 1, stream));
        }
    }

    @Test
    void abortEndsTheCommunicatorAndUseAfterCloseThrows() {
        var comm = NcclCommunicator.initRank(1, Nccl.uniqueId(), 0, NcclConfig.defaults().withCommName("abort-test"));
        comm.abort();
        assertTrue(comm.isClosed());
        comm.close(); // no second free
        assertThrows(IllegalStateException.class, comm::handle);
        assertThrows(IllegalStateException.class, comm::asyncError);
    }
}
