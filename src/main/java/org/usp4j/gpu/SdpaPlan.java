package org.usp4j.gpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.usp4j.cuda.CudaMemory;
import org.usp4j.cuda.DeviceBuffer;
import org.usp4j.cudnn.AttributeType;
import org.usp4j.cudnn.BackendAttribute;
import org.usp4j.cudnn.BackendDescriptor;
import org.usp4j.cudnn.CudnnException;
import org.usp4j.cudnn.CudnnHandle;
import org.usp4j.cudnn.DescriptorType;
import org.usp4j.cudnn.HeuristicMode;

/**
 * A finalized cuDNN execution plan for one SDPA graph, with what executing it needs: the uids to bind,
 * the workspace size and host memory for the by-value scalars. Plans are expensive to build, so
 * {@code gpu.sdpa.CudnnAttention} keeps them. Owns its graph, heuristics and engine configs (the plan references
 * them) and frees everything once on {@link #close}.
 */
public final class SdpaPlan implements DeviceCalls.Plan, AutoCloseable {

    private static final Logger LOG = LogManager.getLogger(SdpaPlan.class);

    private final CudnnGraph graph;
    private final List<BackendDescriptor> owned;
    private final BackendDescriptor plan;
    private final long workspaceBytes;
    private final String engine;
    private final Arena scalars = Arena.ofShared();
    private final List<DeviceBuffer> constants = new ArrayList<>();
    private final Map<Long, Long> fixedAddresses = new HashMap<>();
    private final long[] uids;
    private boolean closed;

    private SdpaPlan(CudnnGraph graph, List<BackendDescriptor> owned, BackendDescriptor plan, String engine,
                     long workspaceBytes) {
        this.graph = graph;
        this.owned = owned;
        this.plan = plan;
        this.engine = engine;
        this.workspaceBytes = workspaceBytes;
        this.uids = graph.spec().boundTensors().stream().mapToLong(GraphSpec.Tensor::uid).toArray();
    }

    /**
     * Binds the values that are the same for every execution: by-value float scalars (kept in host
     * memory the plan owns) and small INT32 device constants (copied to device memory once).
     */
    private void bindConstants(Map<Long, Float> byValue, Map<Long, int[]> deviceInts) {
        byValue.forEach((uid, value) -> {
            MemorySegment s = scalars.allocate(ValueLayout.JAVA_FLOAT);
            s.set(ValueLayout.JAVA_FLOAT, 0, value);
            fixedAddresses.put(uid, s.address());
        });
        deviceInts.forEach((uid, values) -> {
            DeviceBuffer buffer = DeviceBuffer.allocate(4L * values.length);
            constants.add(buffer);
            try (Arena arena = Arena.ofConfined()) {
                CudaMemory.copyToDevice(arena.allocateFrom(ValueLayout.JAVA_INT, values), buffer.pointer());
            }
            fixedAddresses.put(uid, buffer.pointer().address());
        });
    }

    /**
     * Builds the plan of the first engine config that finalizes, asking heuristics mode A and then the
     * fallback list. Takes ownership of {@code graph} (closed on failure too).
     */
    public static SdpaPlan build(CudnnGraph graph, CudnnHandle handle, Map<Long, Float> byValue,
                                 Map<Long, int[]> deviceInts) {
        List<BackendDescriptor> owned = new ArrayList<>();
        List<String> failures = new ArrayList<>();
        try {
            for (HeuristicMode mode : new HeuristicMode[] {HeuristicMode.A, HeuristicMode.FALLBACK}) {
                BackendDescriptor heuristics = BackendDescriptor.create(DescriptorType.ENGINEHEUR);
                owned.add(heuristics);
                List<BackendDescriptor> configs;
                try {
                    // A mode that cannot serve the graph fails here; the next mode may still have engines.
                    heuristics.set(BackendAttribute.ENGINEHEUR_OPERATION_GRAPH, graph.operationGraph())
                            .set(BackendAttribute.ENGINEHEUR_MODE, mode)
                            .finish();
                    long count = heuristics.elementCount(BackendAttribute.ENGINEHEUR_RESULTS, AttributeType.BACKEND_DESCRIPTOR);
                    if (count < 1) {
                        failures.add("heuristics " + mode + ": no engine config");
                        continue;
                    }
                    configs = heuristics.getDescriptors(BackendAttribute.ENGINEHEUR_RESULTS, DescriptorType.ENGINECFG,
                            (int) count);
                    if (configs.isEmpty()) { // seen without a device: a count, then nothing filled in
                        failures.add("heuristics " + mode + ": " + count + " engine configs counted, none returned");
                        continue;
                    }
                } catch (CudnnException e) {
                    failures.add("heuristics " + mode + ": " + e.statusName());
                    continue;
                }
                owned.addAll(configs);
                for (int i = 0; i < configs.size(); i++) {
                    BackendDescriptor config = configs.get(i);
                    BackendDescriptor plan = BackendDescriptor.create(DescriptorType.EXECUTION_PLAN);
                    try {
                        plan.set(BackendAttribute.EXECUTION_PLAN_HANDLE, handle)
                                .set(BackendAttribute.EXECUTION_PLAN_ENGINE_CONFIG, config)
                                .finish();
                    } catch (CudnnException e) {
                        plan.close();
                        failures.add("heuristics " + mode + " config " + i + ": " + e.statusName());
                        continue;
                    }
                    owned.add(plan);
                    String engine = describeEngine(config, mode, i);
                    // Read before the plan object exists: a failure here must not strand its scalar arena.
                    long workspaceBytes = plan.getInt64(BackendAttribute.EXECUTION_PLAN_WORKSPACE_SIZE);
                    SdpaPlan built = new SdpaPlan(graph, owned, plan, engine, workspaceBytes);
                    try {
                        built.bindConstants(byValue, deviceInts);
                    } catch (RuntimeException | Error e) {
                        built.close();
                        throw e;
                    }
                    LOG.info("cuDNN SDPA {} via the composite graph ({} ops): {}, workspace {} bytes",
                            graph.spec().name(), graph.spec().ops().size(), engine, built.workspaceBytes);
                    return built;
                }
            }
        } catch (RuntimeException | Error e) {
            closeAll(owned);
            graph.close();
            throw e;
        }
        closeAll(owned);
        String spec = graph.spec().toString();
        graph.close();
        throw new IllegalStateException("no cuDNN engine can run " + spec.lines().findFirst().orElse("")
                + ": " + String.join("; ", failures));
    }

    private static String describeEngine(BackendDescriptor config, HeuristicMode mode, int index) {
        try (BackendDescriptor engine = config.getDescriptor(BackendAttribute.ENGINECFG_ENGINE, DescriptorType.ENGINE)) {
            return "engine " + engine.getInt64(BackendAttribute.ENGINE_GLOBAL_INDEX) + " (heuristics " + mode
                    + " choice " + index + ")";
        } catch (RuntimeException e) {
            return "heuristics " + mode + " choice " + index;
        }
    }

    @Override
    public long workspaceBytes() {
        return workspaceBytes;
    }

    /** Which engine runs this plan (for logs and reports). */
    public String engine() {
        return engine;
    }

    @Override
    public GraphSpec spec() {
        return graph.spec();
    }

    /**
     * Enqueues the plan on the handle's stream. {@code addresses} maps every bound uid that is not a
     * constant of the plan to a device address; the workspace needs {@link #workspaceBytes}.
     */
    public void execute(CudnnHandle handle, Map<Long, Long> addresses, long workspace) {
        if (closed) {
            throw new IllegalStateException("cuDNN plan for " + graph.spec().name() + " is closed");
        }
        long[] pointers = new long[uids.length];
        for (int i = 0; i < uids.length; i++) {
            Long address = fixedAddresses.containsKey(uids[i]) ? fixedAddresses.get(uids[i]) : addresses.get(uids[i]);
            if (address == null || address == 0) {
                throw new IllegalArgumentException("no address bound for tensor "
                        + graph.spec().tensor(uids[i]) + " of " + graph.spec().name());
            }
            pointers[i] = address;
        }
        if (workspaceBytes > 0 && workspace == 0) {
            throw new IllegalArgumentException("plan needs " + workspaceBytes + " bytes of workspace");
        }
        try (BackendDescriptor pack = BackendDescriptor.create(DescriptorType.VARIANT_PACK)) {
            pack.setInt64s(BackendAttribute.VARIANT_PACK_UNIQUE_IDS, uids)
                    .setPointers(BackendAttribute.VARIANT_PACK_DATA_POINTERS, pointers)
                    .setPointer(BackendAttribute.VARIANT_PACK_WORKSPACE, workspace)
                    .finish();
            handle.execute(plan, pack);
        }
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        closeAll(owned);
        graph.close();
        scalars.close();
        constants.forEach(DeviceBuffer::close);
    }

    private static void closeAll(List<BackendDescriptor> descriptors) {
        for (int i = descriptors.size() - 1; i >= 0; i--) {
            descriptors.get(i).close();
        }
        descriptors.clear();
    }
}
