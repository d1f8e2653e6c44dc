package org.usp4j.gpu;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.lang.foreign.Arena;
import org.usp4j.backend.Backend;
import org.usp4j.cuda.Cuda;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/** Shared helpers of the GPU tests: skip without a device, move tensors between host and device. */
public final class GpuTests {

    private GpuTests() {
    }

    /** Whether a CUDA device (and a runtime that sees it) is present. */
    public static boolean deviceAvailable() {
        try {
            return Cuda.isDeviceAvailable();
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    /**
     * Skips the calling test, visibly (a JUnit assumption, reported as skipped), where no CUDA device
     * is present. Call it from {@code @BeforeEach}: an assumption in {@code @BeforeAll} hides the tests.
     */
    public static void requireDevice() {
        assumeTrue(deviceAvailable(), "no CUDA device: GPU test skipped");
        Cuda.setDevice(0);
    }

    /** A host tensor of standard normal values (rounded to dtype). */
    public static Tensor randomHost(Arena arena, DType dtype, long seed, long... shape) {
        Tensor t = Tensor.allocate(arena, dtype, shape);
        HostTensors.fillNormal(t, seed);
        return t;
    }

    /** A host copy of a device tensor. */
    public static Tensor toHost(Backend backend, Arena arena, Tensor device) {
        Tensor h = Tensor.allocate(arena, device.dtype(), device.shape());
        backend.copy(device, h);
        return h;
    }
}
