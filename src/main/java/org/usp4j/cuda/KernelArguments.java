package org.usp4j.cuda;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;

/**
 * Marshals kernel arguments the way {@code cudaLaunchKernel} takes them: {@code void** args} where
 * {@code args[i]} points to the value of parameter {@code i}. Each value gets its own slot, aligned
 * to its type.
 */
final class KernelArguments {

    private KernelArguments() {
    }

    /** The {@code void*} array (empty arguments give a one-slot array holding NULL, never a dangling pointer). */
    static MemorySegment marshal(List<KernelArg> args, Arena arena) {
        MemorySegment pointers = arena.allocate(ValueLayout.ADDRESS, Math.max(1, args.size()));
        for (int i = 0; i < args.size(); i++) {
            KernelArg arg = args.get(i);
            if (arg == null) {
                throw new IllegalArgumentException("kernel argument " + i + " is null");
            }
            MemorySegment slot = arena.allocate(arg.layout());
            arg.writeTo(slot);
            pointers.setAtIndex(ValueLayout.ADDRESS, i, slot);
        }
        return pointers;
    }
}
