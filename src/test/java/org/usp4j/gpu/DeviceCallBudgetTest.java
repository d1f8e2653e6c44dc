package org.usp4j.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.time.Duration;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.usp4j.backend.TensorAllocator;
import org.usp4j.comm.local.LocalWorld;
import org.usp4j.gpu.CountingDeviceCalls.Call;
import org.usp4j.gpu.sdpa.CudnnAttention;
import org.usp4j.kernel.Mask;
import org.usp4j.sp.AttentionOptions;
import org.usp4j.sp.Forward;
import org.usp4j.sp.RingAttention;
import org.usp4j.sp.SequenceLayout;
import org.usp4j.sp.UlyssesAllToAll;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.Tensor;

/**
 * How many CUDA and cuDNN calls the GPU orchestration issues in steady state (second call onward: plans
 * built, memory cached), counted through {@link CountingDeviceCalls} on machines without a GPU. Every
 * budget below is a ceiling: a change that makes a count grow fails here, and one that cuts a count
 * should lower its budget. Host synchronisation is budgeted separately because it stalls the GPU.
 */
class DeviceCallBudgetTest {

    private static final long B = 1, S = 256, H = 4, D = 64;
    private static final float SCALE = 0.125f;

    /** One SDPA forward on bf16 tensors that cuDNN can bind in place. */
    static final Map<Call, Long> SDPA_FORWARD = Map.of(
            Call.EXECUTE, 1L); // cuDNN's fused kernel; the workspace is memory kept between calls

    /** The backward of that forward, bf16 gradients written in place. */
    static final Map<Call, Long> SDPA_BACKWARD = Map.of(
            Call.EXECUTE, 1L); // dQ_accum and softmax_sum live behind the kept workspace (no memset from 9.6)

    /** The backward into float32 accumulators, as the ring calls it (accumulate = true). */
    static final Map<Call, Long> SDPA_BACKWARD_ACCUMULATE = Map.of(
            Call.EXECUTE, 1L,
            Call.LAUNCH, 3L); // dq, dk, dv += the io-typed results (one add kernel each)

    /** A ring forward's own calls besides its steps, per rank. */
    static final Map<Call, Long> RING_FORWARD_FIXED = Map.of(
            Call.EXECUTE, 1L, // step 0: my own block
            Call.LAUNCH, 2L); // step 0's io output into the float32 accumulator; the accumulator back to io

    /** Each further ring step of the forward, per rank (its transfer counts as {@link #RING_TRANSFER}). */
    static final Map<Call, Long> RING_FORWARD_STEP = Map.of(
            Call.EXECUTE, 1L, // the visiting block
            Call.LAUNCH, 2L,  // the io block output into float32 (the ring's blockOut is float32); the LSE merge
            Call.COPY_2D, 1L); // zigzag: the attending half of the block's lse, packed densely for cuDNN

    /** A ring backward's own calls besides its steps, per rank. */
    static final Map<Call, Long> RING_BACKWARD_FIXED = Map.of(
            Call.MEMSET, 1L,  // the float32 dq accumulator zeroed
            Call.LAUNCH, 3L); // dq, dk, dv from float32 to io

    /** Each ring step of the backward (all R of them), per rank. */
    static final Map<Call, Long> RING_BACKWARD_STEP = Map.of(
            Call.EXECUTE, 1L,
            Call.MEMSET, 2L,  // this step's float32 dK/dV share zeroed
            Call.LAUNCH, 5L,  // dq, dK share, dV share += cuDNN's io results; the travelling dK/dV += my share
            Call.COPY_2D, 1L); // zigzag: the attending half of lse, packed densely

    /** One ring transfer (sendRecv of two tensors), counted on the receiving rank. */
    static final Map<Call, Long> RING_TRANSFER = Map.of(
            Call.SET_DEVICE, 1L,   // a copy thread new to the world binds the rank's device (0 on a reused one)
            Call.COPY, 2L,         // the two tensors, on the copy stream
            Call.EVENT_RECORD, 3L, // sender ready, receiver ready, copy done
            Call.EVENT_CREATE, 3L, // 0 once the transport's spare events cover the transfers in flight, which
                                   // depends on thread timing; never destroyed before the transport closes
            Call.STREAM_WAIT, 4L); // the copy stream on both ready events; both ranks' streams on the copy

    /** One Ulysses all-to-all of {@code [b, s, h, d]} to {@code [b, U s, h/U, d]}, per rank of U. */
    static Map<Call, Long> ulyssesScatter(int u, long batch) {
        return Map.of(
                Call.LAUNCH, batch == 1 ? 1L : 2L, // heads packed into per-peer slots; with b > 1 the received
                                                   // slots unpacked into sequence order
                Call.COPY, (long) u,               // one device copy per peer's piece (mine included)
                Call.SYNCHRONIZE, 2L);             // host joins: my send buffer is written; peers finished reading it
    }

    private CountingDeviceCalls calls;

    @Test
    void sdpaForwardInSteadyStateIsOneExecuteAndNothingElse() {
        calls = new CountingDeviceCalls(new CountingDeviceCalls.Device());
        try (CudaBackend gpu = CudaBackend.create(0, calls, CudnnAttention::new); TensorAllocator memory = gpu.newAllocator()) {
            Tensor q = memory.allocate(DType.BF16, B, S, H, D), k = memory.allocate(DType.BF16, B, S, H, D);
            Tensor v = memory.allocate(DType.BF16, B, S, H, D), out = memory.allocate(DType.BF16, B, S, H, D);
            Tensor lse = memory.allocate(DType.F32, B, H, S);
            for (int i = 0; i < 2; i++) {
                calls.reset();
                gpu.kernel().forward(q, k, v, Mask.CAUSAL, SCALE, out, lse);
            }
            assertWithin("SDPA forward", SDPA_FORWARD, calls.counts(), calls.log());
        }
    }

    @Test
    void sdpaBackwardInSteadyStateIsOneExecuteAndNothingElse() {
        calls = new CountingDeviceCalls(new CountingDeviceCalls.Device());
        try (CudaBackend gpu = CudaBackend.create(0, calls, CudnnAttention::new); TensorAllocator memory = gpu.newAllocator()) {
            Tensor[] t = tensors(memory, DType.BF16, 8);
            Tensor lse = memory.allocate(DType.F32, B, H, S);
            for (int i = 0; i < 2; i++) {
                calls.reset();
                gpu.kernel().backward(t[0], t[1], t[2], t[3], t[4], lse, Mask.CAUSAL, SCALE, t[5], t[6], t[7], false);
            }
            assertWithin("SDPA backward", SDPA_BACKWARD, calls.counts(), calls.log());

            Tensor[] acc = tensors(memory, DType.F32, 3);
            for (int i = 0; i < 2; i++) {
                calls.reset();
                gpu.kernel().backward(t[0], t[1], t[2], t[3], t[4], lse, Mask.CAUSAL, SCALE, acc[0], acc[1], acc[2], true);
            }
            assertWithin("SDPA backward into float32 accumulators", SDPA_BACKWARD_ACCUMULATE, calls.counts(), calls.log());
        }
    }

    @Test
    void beforeCudnn96TheBackwardZeroesDqAccumOnce() {
        calls = new CountingDeviceCalls(new CountingDeviceCalls.Device(90500));
        try (CudaBackend gpu = CudaBackend.create(0, calls, CudnnAttention::new); TensorAllocator memory = gpu.newAllocator()) {
            Tensor[] t = tensors(memory, DType.BF16, 8);
            Tensor lse = memory.allocate(DType.F32, B, H, S);
            for (int i = 0; i < 2; i++) {
                calls.reset();
                gpu.kernel().backward(t[0], t[1], t[2], t[3], t[4], lse, Mask.NONE, SCALE, t[5], t[6], t[7], false);
            }
            assertEquals(Map.of(Call.EXECUTE, 1L, Call.MEMSET, 1L), calls.counts(), () -> String.join("\n", calls.log()));
        }
    }

    @ParameterizedTest(name = "ring of {0}, causal={1} {2}")
    @CsvSource({"2, true, ZIGZAG", "4, true, ZIGZAG", "4, false, CONTIGUOUS", "4, true, CONTIGUOUS", "4, true, STRIPED"})
    void ringCallsInSteadyState(int ranks, boolean causal, SequenceLayout layout) {
        AttentionOptions options = new AttentionOptions(causal, layout, null);
        CountingDeviceCalls.Device device = new CountingDeviceCalls.Device();
        List<CountingDeviceCalls> rankCalls = new ArrayList<>();
        List<CudaBackend> backends = backends(ranks, device, rankCalls);
        Forward[] forwards = new Forward[ranks];
        RingAttention[] rings = new RingAttention[ranks];
        Tensor[][] inputs = new Tensor[ranks][];
        TensorAllocator[] memory = new TensorAllocator[ranks];
        try (LocalWorld world = new LocalWorld(ranks, Duration.ofSeconds(30), r -> backends.get(r).localTransport())) {
            world.run((rank, comm) -> {
                memory[rank] = backends.get(rank).newAllocator();
                rings[rank] = new RingAttention(comm, backends.get(rank), options);
                inputs[rank] = tensors(memory[rank], DType.BF16, 4);
                return null;
            });
            Map<Call, Long> forward = null;
            Map<Call, Long> backward = null;
            for (int i = 0; i < 3; i++) {
                rankCalls.forEach(CountingDeviceCalls::reset);
                world.run((rank, comm) -> {
                    Tensor[] x = inputs[rank];
                    forwards[rank] = rings[rank].forward(x[0], x[1], x[2]);
                    return null;
                });
                forward = total(rankCalls);
                rankCalls.forEach(CountingDeviceCalls::reset);
                world.run((rank, comm) -> {
                    Tensor[] x = inputs[rank];
                    rings[rank].backward(forwards[rank], x[3]);
                    forwards[rank].close();
                    return null;
                });
                backward = total(rankCalls);
            }
            long steps = ranks - 1;
            assertWithin("ring forward over " + ranks, sum(RING_FORWARD_FIXED, 1, RING_FORWARD_STEP, steps,
                    RING_TRANSFER, steps, ranks), forward, List.of());
            assertWithin("ring backward over " + ranks, sum(RING_BACKWARD_FIXED, 1, RING_BACKWARD_STEP, ranks,
                    RING_TRANSFER, 2L * ranks - 1, ranks), backward, List.of());
            assertEquals(0L, forward.getOrDefault(Call.SYNCHRONIZE, 0L) + backward.getOrDefault(Call.SYNCHRONIZE, 0L),
                    "no host synchronisation between ring steps");
            world.run((rank, comm) -> {
                memory[rank].close();
                return null;
            });
        } finally {
            backends.forEach(CudaBackend::close);
        }
        assertEquals(0, device.liveAllocations(), "device memory leaked");
        assertEquals(0, device.liveHandles(), "streams, events, cuDNN handles or plans leaked");
    }

    @ParameterizedTest(name = "Ulysses over {0}, batch {1}")
    @CsvSource({"2, 1", "4, 1", "4, 2"})
    void ulyssesExchangeCallsInSteadyState(int ranks, long batch) {
        CountingDeviceCalls.Device device = new CountingDeviceCalls.Device();
        List<CountingDeviceCalls> rankCalls = new ArrayList<>();
        List<CudaBackend> backends = backends(ranks, device, rankCalls);
        try (LocalWorld world = new LocalWorld(ranks, Duration.ofSeconds(30), r -> backends.get(r).localTransport())) {
            Map<Call, Long> scatter = null;
            for (int i = 0; i < 3; i++) {
                rankCalls.forEach(CountingDeviceCalls::reset);
                world.run((rank, comm) -> {
                    CudaBackend gpu = backends.get(rank);
                    try (TensorAllocator in = gpu.newAllocator(); TensorAllocator out = gpu.newAllocator();
                         TensorAllocator scratch = gpu.newAllocator()) {
                        Tensor x = in.allocate(DType.BF16, batch, S, H * ranks, D);
                        rankCalls.get(rank).reset();
                        comm.barrier();
                        new UlyssesAllToAll(comm, gpu).scatterHeads(x, out, scratch);
                        comm.barrier();
                    }
                    return null;
                });
                scatter = total(rankCalls);
            }
            assertWithin("Ulysses all-to-all over " + ranks + ", batch " + batch,
                    sum(ulyssesScatter(ranks, batch), 1, Map.of(), 0, Map.of(), 0, ranks), scatter, List.of());
        } finally {
            backends.forEach(CudaBackend::close);
        }
    }

    /** (fixed + steps x step + transfers x transfer) per rank, times ranks. */
    private static Map<Call, Long> sum(Map<Call, Long> fixed, long once, Map<Call, Long> step, long steps,
                                       Map<Call, Long> transfer, long transfers, int ranks) {
        Map<Call, Long> all = new EnumMap<>(Call.class);
        fixed.forEach((k, v) -> all.merge(k, v * once * ranks, Long::sum));
        step.forEach((k, v) -> all.merge(k, v * steps * ranks, Long::sum));
        transfer.forEach((k, v) -> all.merge(k, v * transfers * ranks, Long::sum));
        return all;
    }

    /** One backend per rank on {@code device}, each counting on its own double (added to {@code calls}). */
    private static List<CudaBackend> backends(int ranks, CountingDeviceCalls.Device device,
                                              List<CountingDeviceCalls> calls) {
        List<CudaBackend> backends = new ArrayList<>();
        for (int r = 0; r < ranks; r++) {
            calls.add(new CountingDeviceCalls(device));
            backends.add(CudaBackend.create(0, calls.get(r), CudnnAttention::new));
        }
        return backends;
    }

    /** {@code n} tensors [B, S, H, D]. */
    private static Tensor[] tensors(TensorAllocator memory, DType dtype, int n) {
        Tensor[] t = new Tensor[n];
        for (int i = 0; i < n; i++) {
            t[i] = memory.allocate(dtype, B, S, H, D);
        }
        return t;
    }

    private static Map<Call, Long> total(List<CountingDeviceCalls> ranks) {
        Map<Call, Long> sum = new EnumMap<>(Call.class);
        for (CountingDeviceCalls c : ranks) {
            c.counts().forEach((k, v) -> sum.merge(k, v, Long::sum));
        }
        return sum;
    }

    /** Every kind of call within its budget (kinds absent from the budget: none allowed). */
    static void assertWithin(String what, Map<Call, Long> budget, Map<Call, Long> actual, List<String> log) {
        for (var e : actual.entrySet()) {
            long allowed = budget.getOrDefault(e.getKey(), 0L);
            assertTrue(e.getValue() <= allowed, () -> what + ": " + e.getValue() + " " + e.getKey() + " calls, budget "
                    + allowed + "; all counts " + actual + "; calls:\n" + String.join("\n", log));
        }
    }
}
