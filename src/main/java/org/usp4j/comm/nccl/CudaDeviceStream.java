package org.usp4j.comm.nccl;

import java.util.Objects;
import org.usp4j.cuda.CudaEvent;
import org.usp4j.cuda.CudaStream;

/** A {@link DeviceStream} over a CUDA stream; markers are timing-free CUDA events. */
final class CudaDeviceStream implements DeviceStream {

    private final CudaStream stream;

    CudaDeviceStream(CudaStream stream) {
        this.stream = Objects.requireNonNull(stream, "stream");
    }

    CudaStream stream() {
        return stream;
    }

    /** The CUDA stream behind {@code s}, which must be one of these. */
    static CudaStream cudaStream(DeviceStream s) {
        if (s instanceof CudaDeviceStream c) {
            return c.stream;
        }
        throw new IllegalArgumentException("NCCL work needs a CUDA stream, got " + s);
    }

    @Override
    public DeviceMarker mark() {
        CudaEvent event = CudaEvent.create(false);
        try {
            event.record(stream);
        } catch (RuntimeException e) {
            event.close();
            throw e;
        }
        return new EventMarker(event);
    }

    @Override
    public void waitFor(DeviceMarker marker) {
        if (!(marker instanceof EventMarker m)) {
            throw new IllegalArgumentException("a CUDA stream can only wait for a CUDA event marker, got " + marker);
        }
        stream.waitFor(m.event);
    }

    @Override
    public String toString() {
        return "CudaDeviceStream[" + stream + "]";
    }

    /** A recorded event. CUDA lets an event be destroyed before it completes; the wait stays valid. */
    private record EventMarker(CudaEvent event) implements DeviceMarker {
        @Override
        public boolean isComplete() {
            return event.isClosed() || event.isComplete();
        }

        @Override
        public void close() {
            event.close();
        }
    }
}
