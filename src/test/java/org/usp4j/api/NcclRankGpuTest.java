package org.usp4j.api;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.usp4j.cuda.CudaMemory;
import org.usp4j.cuda.CudaStream;
import org.usp4j.cuda.DeviceBuffer;
import org.usp4j.comm.nccl.NcclProcessRank;
import org.usp4j.gpu.GpuTests;
import org.usp4j.nccl.NcclCommunicator;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * {@link Usp4j#ncclRank} over a real NCCL communicator of one rank on GPU 0 that the test made itself
 * (with usp4j's NCCL wrappers, standing in for a framework's) and hands in as raw handles with its own
 * stream: a layer's forward and backward equal the same layer on {@link Usp4j#cudaWorld} (single-device
 * cuDNN SDPA over the whole sequence; both sides compute identically, bf16 tolerances as in
 * {@code NcclWorldGpuTest}), and closing the rank leaves the caller's communicator and stream usable
 * (the test destroys them itself, once).
 */
@Tag("gpu")
@Timeout(300)
class NcclRankGpuTest {

    @BeforeEach
    void requireDevice() {
        GpuTests.requireDevice();
        assumeTrue(NcclProcessRank.unavailableReason().isEmpty(),
                () -> "no NCCL here: " + NcclProcessRank.unavailableReason().orElse(""));
    }

    @Test
    void aCallersOneRankCommunicatorRunsALayerLikeASingleDevice() {
        long b = 1, s = 512, h = 8, hkv = 2, d = 64;
        DType dtype = DType.BF16;
        Mesh mesh = new Mesh(1, 1);
        AttentionOptions options = AttentionOptions.defaults().withCausal(true).withLayout(SequenceLayout.ZIGZAG);
        try (Arena arena = Arena.ofShared()) {
            Tensor[] inputs = {GpuTests.randomHost(arena, dtype, 51, b, s, h, d),
                    GpuTests.randomHost(arena, dtype, 52, b, s, hkv, d), GpuTests.randomHost(arena, dtype, 53, b, s, hkv, d),
                    GpuTests.randomHost(arena, dtype, 54, b, s, h, d)};
            Tensor[] single;
            try (InProcessWorld world = Usp4j.cudaWorld(1, 0)) {
                single = world.run(rank -> run(rank, mesh, options, inputs, arena, null)).getFirst();
            }
            Tensor[] borrowed;
            try (NcclCommunicator comm = NcclCommunicator.initAll(0).getFirst(); CudaStream stream = CudaStream.create()) {
                NcclHandles handles = NcclHandles.of(comm.handle(), stream.handle(), 0);
                try (ProcessRank rank = Usp4j.ncclRank(handles)) {
                    assertEquals(0, rank.rank());
                    assertEquals(1, rank.worldSize());
                    assertEquals(BackendKind.CUDA, rank.backend());
                    assertEquals(OptionalInt.of(0), rank.cudaDevice());
                    borrowed = run(rank, mesh, options, inputs, arena, stream);
                }
                assertFalse(comm.isClosed(), "the caller's communicator is still open after the rank closed");
                assertTrue(comm.asyncError().isEmpty(), "and healthy");
                // It still works: a new rank over it runs again (a new split of the same communicator).
                try (ProcessRank again = Usp4j.ncclRank(handles)) {
                    Tensor[] second = run(again, mesh, options, inputs, arena, stream);
                    check("out of a second rank over the same communicator", borrowed[0], second[0], 0);
                }
            } // the test destroys its communicator and stream: exactly once, no double free
            String[] names = {"out", "dq", "dk", "dv"};
            double[] tolerances = {1e-2, 2e-2, 2e-2, 2e-2};
            for (int i = 0; i < 4; i++) {
                check(names[i], single[i], borrowed[i], tolerances[i]);
            }
        }
    }

    /** Forward and backward of one layer on device copies of the inputs; the results back on the host. */
    private static Tensor[] run(RankContext rank, Mesh mesh, AttentionOptions options, Tensor[] inputs, Arena arena,
                                CudaStream stream) {
        List<DeviceBuffer> buffers = new ArrayList<>();
        try {
            Tensor[] in = new Tensor[4];
            for (int i = 0; i < 4; i++) {
                in[i] = device(inputs[i], buffers);
                CudaMemory.copyToDevice(inputs[i].segment(), in[i].devicePointer());
            }
            Tensor[] out = {device(inputs[0], buffers), device(inputs[0], buffers), device(inputs[1], buffers),
                    device(inputs[2], buffers)};
            try (AttentionLayer layer = rank.newAttention(mesh, options)) {
                layer.forward(in[0], in[1], in[2], out[0]);
                layer.backward(in[3], out[1], out[2], out[3]);
            }
            if (stream != null) {
                stream.synchronize(); // a process rank's work is ordered on the caller's stream
            }
            Tensor[] host = new Tensor[4];
            for (int i = 0; i < 4; i++) {
                host[i] = Tensor.allocate(arena, out[i].dtype(), out[i].shape());
                CudaMemory.copyToHost(out[i].devicePointer(), host[i].segment());
            }
            return host;
        } finally {
            buffers.forEach(DeviceBuffer::close);
        }
    }

    private static Tensor device(Tensor like, List<DeviceBuffer> buffers) {
        DeviceBuffer buffer = DeviceBuffer.allocate(like.byteSize());
        buffers.add(buffer);
        return Tensor.device(buffer.pointer(), like.dtype(), like.shape());
    }

    private static void check(String what, Tensor expected, Tensor actual, double tolerance) {
        double err = HostTensors.relativeError(actual, expected);
        assertTrue(err <= tolerance, () -> what + ": relative error " + err + " > " + tolerance);
    }
}
