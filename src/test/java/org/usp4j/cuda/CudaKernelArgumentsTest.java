package org.usp4j.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.usp4j.tensor.DevicePointer;

/** Argument marshalling for {@code cudaLaunchKernel}, checked without a GPU by reading the memory back. */
class CudaKernelArgumentsTest {

    @Test
    @SuppressWarnings("restricted")
    void eachArgumentGetsAnAlignedSlotThatThePointerArrayPointsTo() {
        List<KernelArg> args = List.of(KernelArg.pointer(new DevicePointer(0x7f00_0000_1000L, 64, 0)),
                KernelArg.i32(-7), KernelArg.f32(1.5f), KernelArg.i64(1L << 40), KernelArg.f64(-2.25),
                KernelArg.nullPointer());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment argv = KernelArguments.marshal(args, arena);
            assertEquals(args.size() * ValueLayout.ADDRESS.byteSize(), argv.byteSize());
            MemorySegment[] slots = new MemorySegment[args.size()];
            for (int i = 0; i < args.size(); i++) {
                slots[i] = argv.getAtIndex(ValueLayout.ADDRESS, i).reinterpret(8);
                long size = args.get(i).layout().byteSize();
                assertEquals(0, slots[i].address() % size, "slot " + i + " is not aligned to " + size);
            }
            assertEquals(0x7f00_0000_1000L, slots[0].get(ValueLayout.ADDRESS, 0).address());
            assertEquals(-7, slots[1].get(ValueLayout.JAVA_INT, 0));
            assertEquals(1.5f, slots[2].get(ValueLayout.JAVA_FLOAT, 0));
            assertEquals(1L << 40, slots[3].get(ValueLayout.JAVA_LONG, 0));
            assertEquals(-2.25, slots[4].get(ValueLayout.JAVA_DOUBLE, 0));
            assertEquals(0L, slots[5].get(ValueLayout.ADDRESS, 0).address());
            // distinct slots: writing one value never overlaps another
            long[] starts = Arrays.stream(slots).mapToLong(MemorySegment::address).sorted().toArray();
            for (int i = 1; i < starts.length; i++) {
                assertTrue(starts[i] - starts[i - 1] >= 4, "overlapping slots");
            }
        }
    }

    @Test
    void noArgumentsGiveANullTerminatedArrayAndNullArgumentsAreRefused() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment argv = KernelArguments.marshal(List.of(), arena);
            assertEquals(0L, argv.get(ValueLayout.ADDRESS, 0).address());
            var withNull = Arrays.asList(KernelArg.i32(1), null);
            var e = assertThrows(IllegalArgumentException.class, () -> KernelArguments.marshal(withNull, arena));
            assertTrue(e.getMessage().contains("1"), e.getMessage());
        }
    }

    @Test
    void launchDimensionsMarshalAsDim3ByValue() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment d = CudaKernel.dim3(arena, new Dim3(128, 4, 2));
            assertEquals(12, d.byteSize());
            assertArrayEquals(new int[] {128, 4, 2}, d.toArray(ValueLayout.JAVA_INT));
            assertEquals(1024, new Dim3(128, 4, 2).volume());
            assertEquals(new Dim3(5, 1, 1), Dim3.of(5));
            assertThrows(IllegalArgumentException.class, () -> Dim3.of(3, -1));
        }
    }
}
