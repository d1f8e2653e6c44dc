package org.usp4j.api.example;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Queue;
import java.util.concurrent.ConcurrentLinkedQueue;
import java.util.function.Function;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.usp4j.api.InProcessWorld;
import org.usp4j.api.Mesh;
import org.usp4j.api.Usp4j;
import org.usp4j.api.example.ToyTransformerExample.RankStep;
import org.usp4j.api.example.ToyTransformerExample.Shape;
import org.usp4j.api.example.ToyTransformerExample.Staging;
import org.usp4j.api.example.ToyTransformerExample.Weights;
import org.usp4j.cuda.Cuda;
import org.usp4j.cuda.CudaMemory;
import org.usp4j.cuda.DeviceBuffer;
import org.usp4j.gpu.GpuTests;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * The README's worked example, the same code on 4 in-process CUDA ranks of one device (cuDNN attention,
 * bf16, as cuDNN's SDPA needs), against the same example on 4 CPU ranks in bf16: relative Frobenius error
 * of the outputs, every layer's dq, dk, dv and dLoss/dx at most 3e-2 (both round activations to bf16,
 * with different accumulation orders). Skips without a GPU.
 */
@Tag("gpu")
class ToyTransformerExampleGpuTest {

    static final Shape SHAPE = new Shape(4, 2, 16, DType.BF16);
    static final long SEQ = 64;
    static final Mesh MESH = new Mesh(2, 2);

    @BeforeEach
    void device() {
        GpuTests.requireDevice();
    }

    @Test
    void cudnnRanksEqualCpuRanks() {
        try (Arena arena = Arena.ofShared(); DeviceStaging staging = new DeviceStaging()) {
            List<Weights> layers = List.of(ToyTransformerExample.randomWeights(SHAPE, 1, arena),
                    ToyTransformerExample.randomWeights(SHAPE, 2, arena));
            MemorySegment x = ToyTransformerExample.randomRows(SHAPE, SEQ, 3, arena);
            MemorySegment dy = ToyTransformerExample.randomRows(SHAPE, SEQ, 4, arena);
            List<RankStep> gpu;
            try (InProcessWorld world = Usp4j.cudaWorld(4, 0)) {
                gpu = ToyTransformerExample.step(world, MESH, SHAPE, layers, x, dy, staging, arena);
            }
            List<RankStep> cpu;
            try (InProcessWorld world = Usp4j.cpuWorld(4)) {
                cpu = ToyTransformerExample.step(world, MESH, SHAPE, layers, x, dy, Staging.HOST, arena);
            }
            int c = SHAPE.width();
            int ckv = SHAPE.kvWidth();
            for (int layer = 0; layer < layers.size(); layer++) {
                int l = layer;
                compare("layer " + l + " out", cpu, gpu, r -> r.blocks().get(l).out, c);
                compare("layer " + l + " dq", cpu, gpu, r -> r.blocks().get(l).dq, c);
                compare("layer " + l + " dk", cpu, gpu, r -> r.blocks().get(l).dk, ckv);
                compare("layer " + l + " dv", cpu, gpu, r -> r.blocks().get(l).dv, ckv);
            }
            compare("y", cpu, gpu, RankStep::y, c);
            compare("dx", cpu, gpu, RankStep::dx, c);
        }
    }

    private static void compare(String what, List<RankStep> expected, List<RankStep> actual,
                                Function<RankStep, MemorySegment> part, int width) {
        ToyTransformerExampleTest.check(what + " (cuDNN vs CPU)",
                ToyTransformerExampleTest.gather(expected, part, width, SHAPE),
                ToyTransformerExampleTest.gather(actual, part, width, SHAPE), 3e-2);
    }

    /** A framework's device copies of the rows: uploaded for usp4j, results copied back; freed once, at the end. */
    static final class DeviceStaging implements Staging, AutoCloseable {
        private final Queue<DeviceBuffer> buffers = new ConcurrentLinkedQueue<>();

        @Override
        public Tensor toRank(Tensor host) {
            DeviceBuffer buffer = DeviceBuffer.allocate(host.byteSize()); // on the rank thread's device
            buffers.add(buffer);
            CudaMemory.copyToDevice(host.contiguousSegment(), buffer.pointer());
            Cuda.synchronizeDevice(); // a pageable upload may still be in flight when cudaMemcpy returns
            return Tensor.device(buffer.pointer(), host.dtype(), host.shape());
        }

        @Override
        public void fromRank(Tensor onRank, MemorySegment rows) {
            CudaMemory.copyToHost(onRank.contiguousDevicePointer(), rows.asSlice(0, onRank.byteSize()));
        }

        @Override
        public void close() {
            DeviceBuffer b;
            while ((b = buffers.poll()) != null) {
                b.close();
            }
        }
    }
}
