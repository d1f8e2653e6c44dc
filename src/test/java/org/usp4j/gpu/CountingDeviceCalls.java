package org.usp4j.gpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.Collections;
import java.util.EnumMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.atomic.AtomicLong;
import org.usp4j.cuda.CudaStream;
import org.usp4j.cuda.Dim3;
import org.usp4j.cuda.KernelArg;
import org.usp4j.tensor.DevicePointer;

/**
 * {@link DeviceCalls} for tests without a GPU: nothing runs, every call is counted by kind, and the
 * bookkeeping a GPU would enforce is checked instead. Device memory is made-up addresses that are
 * never dereferenced; a copy, memset or cuDNN binding outside live memory, a free or destroy of
 * something not alive, or an execution with an unbound tensor throws. Ranks of one in-process world
 * share one {@link Device} (they read each other's buffers) and count on their own instance.
 */
final class CountingDeviceCalls implements DeviceCalls {

    /** The kinds of call, one per operation of {@link DeviceCalls}. */
    enum Call {
        SET_DEVICE, STREAM_CREATE, STREAM_DESTROY, SYNCHRONIZE, STREAM_WAIT,
        EVENT_CREATE, EVENT_RECORD, EVENT_DESTROY,
        ALLOCATE, FREE, MEMSET, COPY, COPY_2D, COPY_TO_DEVICE, COPY_TO_HOST, PINNED_ALLOCATE, PINNED_FREE,
        KERNEL_LOOKUP, QUERY, LAUNCH,
        CUDNN_CREATE, CUDNN_DESTROY, PLAN_BUILD, EXECUTE, PLAN_DESTROY
    }

    /** The memory, events and streams of one made-up GPU, shared by the ranks on it. */
    static final class Device {
        private final AtomicLong nextAddress = new AtomicLong(0x7000_0000_0000L);
        private final TreeMap<Long, Long> live = new TreeMap<>();
        private final Set<Object> handles = Collections.synchronizedSet(new HashSet<>());
        private final long cudnnVersion;

        Device(long cudnnVersion) {
            this.cudnnVersion = cudnnVersion;
        }

        Device() {
            this(91900);
        }

        synchronized DevicePointer allocate(long bytes) {
            if (bytes <= 0) {
                throw new IllegalArgumentException("fake GPU: allocation of " + bytes + " bytes");
            }
            long address = nextAddress.getAndAdd((bytes + 511) & -512L);
            live.put(address, bytes);
            return new DevicePointer(address, bytes, 0);
        }

        synchronized void free(DevicePointer p) {
            Long size = live.get(p.address());
            if (size == null || size != p.byteSize()) {
                throw new IllegalStateException("fake GPU: free of " + p + ", which is not a live allocation");
            }
            live.remove(p.address());
        }

        /** Throws unless [address, address + bytes) lies inside one live allocation. */
        synchronized void requireLive(String call, long address, long bytes) {
            var e = live.floorEntry(address);
            if (e == null || address + bytes > e.getKey() + e.getValue()) {
                throw new IllegalStateException("fake GPU: " + call + " touches [0x" + Long.toHexString(address) + ", +"
                        + bytes + ") outside live device memory");
            }
        }

        synchronized int liveAllocations() {
            return live.size();
        }

        void open(Object handle) {
            handles.add(handle);
        }

        void requireOpen(String call, Object handle) {
            if (!handles.contains(handle)) {
                throw new IllegalStateException("fake GPU: " + call + " on " + handle + ", which is not alive");
            }
        }

        void close(String call, Object handle) {
            if (!handles.remove(handle)) {
                throw new IllegalStateException("fake GPU: " + call + " of " + handle + ", which is not alive");
            }
        }

        int liveHandles() {
            return handles.size();
        }
    }

    private record FakeAllocation(DevicePointer pointer) implements Allocation {
    }

    private record FakeEvent(long id) implements Event {
    }

    private record FakeStaging(Arena arena, MemorySegment segment) implements HostStaging {
    }

    private record FakeKernel(String name) implements Kernel {
    }

    private record FakeCudnn(long id) implements CudnnContext {
    }

    private record FakePlan(long id, GraphSpec spec, long workspaceBytes, Set<Long> constants) implements Plan {
    }

    /** What every made-up plan asks for, so that the workspace path runs. */
    static final long PLAN_WORKSPACE_BYTES = 1 << 20;
    private static final AtomicLong IDS = new AtomicLong(1);

    private final Device device;
    private final Map<Call, AtomicLong> counts = new EnumMap<>(Call.class);
    private final List<String> log = Collections.synchronizedList(new ArrayList<>());

    CountingDeviceCalls(Device device) {
        this.device = device;
        for (Call c : Call.values()) {
            counts.put(c, new AtomicLong());
        }
    }

    Device device() {
        return device;
    }

    /** Forgets the counts so far. */
    void reset() {
        counts.values().forEach(c -> c.set(0));
        log.clear();
    }

    long count(Call call) {
        return counts.get(call).get();
    }

    /** The counts since the last reset, by kind (zeros left out). */
    Map<Call, Long> counts() {
        Map<Call, Long> m = new EnumMap<>(Call.class);
        counts.forEach((k, v) -> {
            if (v.get() > 0) {
                m.put(k, v.get());
            }
        });
        return m;
    }

    /** The calls since the last reset, in order, for failure messages. */
    List<String> log() {
        synchronized (log) {
            return List.copyOf(log);
        }
    }

    private void count(Call call, String detail) {
        counts.get(call).incrementAndGet();
        log.add(detail == null ? call.name() : call + " " + detail);
    }

    @Override
    public void setDevice(int d) {
        count(Call.SET_DEVICE, null);
    }

    @Override
    public CudaStream createStream() {
        count(Call.STREAM_CREATE, null);
        CudaStream s = CudaStream.borrow(IDS.getAndIncrement() << 4);
        device.open(s);
        return s;
    }

    @Override
    public void destroyStream(CudaStream stream) {
        count(Call.STREAM_DESTROY, null);
        device.close("destroyStream", stream);
        stream.close();
    }

    @Override
    public void synchronize(CudaStream stream) {
        count(Call.SYNCHRONIZE, null);
        stream.handle();
    }

    @Override
    public void waitFor(CudaStream stream, Event event) {
        count(Call.STREAM_WAIT, null);
        stream.handle();
        device.requireOpen("waitFor", event);
    }

    @Override
    public Event createEvent() {
        count(Call.EVENT_CREATE, null);
        FakeEvent e = new FakeEvent(IDS.getAndIncrement());
        device.open(e);
        return e;
    }

    @Override
    public void record(Event event, CudaStream stream) {
        count(Call.EVENT_RECORD, null);
        stream.handle();
        device.requireOpen("record", event);
    }

    @Override
    public void destroy(Event event) {
        count(Call.EVENT_DESTROY, null);
        device.close("destroy", event);
    }

    @Override
    public Allocation allocate(long bytes, CudaStream stream) {
        count(Call.ALLOCATE, Long.toString(bytes));
        stream.handle();
        FakeAllocation a = new FakeAllocation(device.allocate(bytes));
        device.open(a);
        return a;
    }

    @Override
    public void free(Allocation allocation) {
        count(Call.FREE, Long.toString(allocation.pointer().byteSize()));
        device.close("free", allocation);
        device.free(allocation.pointer());
    }

    @Override
    public void memset(DevicePointer dst, int byteValue, CudaStream stream) {
        count(Call.MEMSET, Long.toString(dst.byteSize()));
        device.requireLive("memset", dst.address(), dst.byteSize());
    }

    @Override
    public void copy(DevicePointer src, DevicePointer dst, CudaStream stream) {
        count(Call.COPY, Long.toString(src.byteSize()));
        if (src.byteSize() > dst.byteSize()) {
            throw new IllegalArgumentException("fake GPU: copy of " + src.byteSize() + " bytes into " + dst.byteSize());
        }
        device.requireLive("copy source", src.address(), src.byteSize());
        device.requireLive("copy destination", dst.address(), src.byteSize());
    }

    @Override
    public void copy2D(DevicePointer src, long srcPitch, DevicePointer dst, long dstPitch, long widthBytes, long height,
                       CudaStream stream) {
        count(Call.COPY_2D, widthBytes + "x" + height);
        device.requireLive("2-D copy source", src.address(), (height - 1) * srcPitch + widthBytes);
        device.requireLive("2-D copy destination", dst.address(), (height - 1) * dstPitch + widthBytes);
    }

    @Override
    public void copyToDevice(MemorySegment src, DevicePointer dst, CudaStream stream) {
        count(Call.COPY_TO_DEVICE, Long.toString(src.byteSize()));
        device.requireLive("upload", dst.address(), src.byteSize());
    }

    @Override
    public void copyToHost(DevicePointer src, MemorySegment dst, CudaStream stream) {
        count(Call.COPY_TO_HOST, Long.toString(src.byteSize()));
        device.requireLive("download", src.address(), src.byteSize());
    }

    @Override
    public HostStaging allocatePinned(long bytes) {
        count(Call.PINNED_ALLOCATE, Long.toString(bytes));
        Arena arena = Arena.ofShared();
        FakeStaging s = new FakeStaging(arena, arena.allocate(bytes, 64));
        device.open(s);
        return s;
    }

    @Override
    public void free(HostStaging staging) {
        count(Call.PINNED_FREE, null);
        device.close("free pinned", staging);
        ((FakeStaging) staging).arena.close();
    }

    @Override
    public Kernel kernel(String name) {
        count(Call.KERNEL_LOOKUP, name);
        return new FakeKernel(name);
    }

    @Override
    public int multiprocessorCount() {
        count(Call.QUERY, "multiprocessors");
        return 132;
    }

    @Override
    public void launch(Kernel kernel, Dim3 grid, Dim3 block, CudaStream stream, List<KernelArg> args) {
        count(Call.LAUNCH, kernel.name());
        stream.handle();
    }

    @Override
    public long cudnnVersion() {
        count(Call.QUERY, "cudnnVersion");
        return device.cudnnVersion;
    }

    @Override
    public CudnnContext createCudnn(CudaStream stream) {
        count(Call.CUDNN_CREATE, null);
        FakeCudnn c = new FakeCudnn(IDS.getAndIncrement());
        device.open(c);
        return c;
    }

    @Override
    public void destroy(CudnnContext cudnn) {
        count(Call.CUDNN_DESTROY, null);
        device.close("destroy cuDNN handle", cudnn);
    }

    @Override
    public Plan buildPlan(CudnnContext cudnn, GraphSpec spec, Map<Long, Float> byValue, Map<Long, int[]> deviceInts) {
        count(Call.PLAN_BUILD, spec.name());
        device.requireOpen("buildPlan", cudnn);
        Set<Long> constants = new HashSet<>(byValue.keySet());
        constants.addAll(deviceInts.keySet());
        FakePlan p = new FakePlan(IDS.getAndIncrement(), spec, PLAN_WORKSPACE_BYTES, Set.copyOf(constants));
        device.open(p);
        return p;
    }

    @Override
    public void execute(CudnnContext cudnn, Plan plan, Map<Long, Long> addresses, long workspace) {
        count(Call.EXECUTE, plan.spec().name());
        device.requireOpen("execute", cudnn);
        device.requireOpen("execute", plan);
        FakePlan p = (FakePlan) plan;
        for (GraphSpec.Tensor t : p.spec.boundTensors()) {
            if (p.constants.contains(t.uid())) {
                continue;
            }
            Long address = addresses.get(t.uid());
            if (address == null || address == 0) {
                throw new IllegalArgumentException("fake cuDNN: no address bound for " + t.name() + " of " + p.spec.name());
            }
            if (address % 16 != 0) {
                throw new IllegalArgumentException("fake cuDNN: " + t.name() + " at 0x" + Long.toHexString(address)
                        + " is not 16-byte aligned");
            }
            device.requireLive("execute binding " + t.name(), address, extentBytes(t));
        }
        device.requireLive("execute workspace", workspace, p.workspaceBytes);
    }

    /** The bytes a bound graph tensor spans from its first element, from its dims and strides. */
    private static long extentBytes(GraphSpec.Tensor t) {
        long last = 0;
        for (int i = 0; i < t.dims().length; i++) {
            last += (t.dims()[i] - 1) * t.strides()[i];
        }
        long element = switch (t.type()) {
            case HALF, BFLOAT16 -> 2;
            case FLOAT, INT32 -> 4;
            default -> 8;
        };
        return (last + 1) * element;
    }

    @Override
    public void destroy(Plan plan) {
        count(Call.PLAN_DESTROY, null);
        device.close("destroy plan", plan);
    }
}
