package org.usp4j.sp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.management.ManagementFactory;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import javax.management.ObjectName;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.junit.jupiter.api.Test;
import org.usp4j.api.Mesh;
import org.usp4j.cpu.CpuBackend;
import org.usp4j.engine.AttentionEngine;
import org.usp4j.kernel.ReferenceAttention;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.HostTensors;
import org.usp4j.tensor.Tensor;

/**
 * 1,000 small forward + backward calls on a 2 x 2 mesh leave native memory flat: every byte the ranks
 * allocate goes through their backends' allocators, which count it, and the count is the same after
 * every iteration (the last forward's saved state) and zero once the facade is closed. When the JVM
 * runs with Native Memory Tracking ({@code -Djvm.flags="... -XX:NativeMemoryTracking=summary"}), the
 * NMT "Other" category (where MemorySegment allocations land) must not grow between iteration 100 and
 * the end either.
 */
class SoakTest {

    private static final Logger LOG = LogManager.getLogger(SoakTest.class);

    @Test
    void thousandForwardBackwardCallsLeaveNativeMemoryFlat() {
        List<CpuBackend> backends = new CopyOnWriteArrayList<>();
        long steady = -1;
        long start = System.nanoTime();
        int iterations = 1000;
        try (Arena inputs = Arena.ofConfined();
             AttentionEngine attention = AttentionEngine.inProcess(new UspPlan(new Mesh(2, 2),
                     new AttentionOptions(true, SequenceLayout.ZIGZAG, null)), r -> {
                         CpuBackend b = new CpuBackend(new ReferenceAttention());
                         backends.add(b);
                         return b;
                     }, Duration.ofSeconds(60))) {
            Tensor q = Tensor.allocate(inputs, DType.BF16, 1, 16, 4, 8);
            Tensor k = Tensor.allocate(inputs, DType.BF16, 1, 16, 2, 8);
            Tensor v = Tensor.allocate(inputs, DType.BF16, 1, 16, 2, 8);
            Tensor dout = Tensor.allocate(inputs, DType.BF16, 1, 16, 4, 8);
            HostTensors.fillNormal(q, 1);
            HostTensors.fillNormal(k, 2);
            HostTensors.fillNormal(v, 3);
            HostTensors.fillNormal(dout, 4);
            long nmtAt100 = -1;
            for (int i = 0; i < iterations; i++) {
                if (i == 100) {
                    nmtAt100 = nmtOtherCommittedKb();
                }
                try (Arena results = Arena.ofConfined()) {
                    attention.forward(q, k, v, results);
                    attention.backward(dout, results);
                }
                long live = backends.stream().mapToLong(CpuBackend::liveBytes).sum();
                if (i == 0) {
                    steady = live;
                    assertTrue(steady > 0, "the saved state of the last forward is held");
                }
                assertEquals(steady, live, "live native bytes after iteration " + i);
            }
            long nmtEnd = nmtOtherCommittedKb();
            if (nmtAt100 >= 0) {
                LOG.info("NMT Other committed: {} KB at iteration 100, {} KB at {}", nmtAt100, nmtEnd, iterations);
                assertTrue(nmtEnd - nmtAt100 < 1024, "native memory grew by " + (nmtEnd - nmtAt100) + " KB");
            }
        }
        backends.forEach(b -> assertEquals(0, b.liveBytes(), "everything freed on close"));
        LOG.info("{} forward+backward calls in {} ms, {} live bytes per iteration", iterations,
                (System.nanoTime() - start) / 1_000_000, steady);
    }

    /** NMT's committed KB for the "Other" category, or -1 when tracking is off. */
    private static long nmtOtherCommittedKb() {
        try {
            String summary = (String) ManagementFactory.getPlatformMBeanServer().invoke(
                    new ObjectName("com.sun.management:type=DiagnosticCommand"), "vmNativeMemory",
                    new Object[] {new String[] {"summary", "scale=KB"}}, new String[] {String[].class.getName()});
            Matcher m = Pattern.compile("Other \\(reserved=(\\d+)KB, committed=(\\d+)KB\\)").matcher(summary);
            return m.find() ? Long.parseLong(m.group(2)) : -1;
        } catch (Exception e) {
            return -1;
        }
    }
}
