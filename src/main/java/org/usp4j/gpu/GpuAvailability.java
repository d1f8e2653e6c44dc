package org.usp4j.gpu;

import java.util.Optional;
import org.usp4j.cuda.Cuda;
import org.usp4j.cudnn.Cudnn;

/** Whether the CUDA backend can run here, and if not, why (for one-line CLI errors). */
public final class GpuAvailability {

    private GpuAvailability() {
    }

    /** Empty when a CUDA device, the CUDA runtime and cuDNN are all usable; else the reason. */
    public static Optional<String> problem() {
        try {
            int devices = Cuda.deviceCount();
            if (devices < 1) {
                return Optional.of("no CUDA device");
            }
        } catch (RuntimeException | LinkageError e) {
            return Optional.of("no usable CUDA device (" + firstLine(e) + ")");
        }
        try {
            Cudnn.library();
        } catch (RuntimeException | LinkageError e) {
            return Optional.of("cuDNN is not available (" + firstLine(e) + ")");
        }
        return Optional.empty();
    }

    private static String firstLine(Throwable e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        int nl = m.indexOf('\n');
        return nl < 0 ? m : m.substring(0, nl);
    }
}
