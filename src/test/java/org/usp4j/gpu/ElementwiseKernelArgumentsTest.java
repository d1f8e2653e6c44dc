package org.usp4j.gpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.usp4j.cuda.KernelArg;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.Tensor;

/**
 * The arguments ElementwiseKernels marshals match, one by one, the parameters of the kernels in the
 * shipped PTX (size and alignment: cudaLaunchKernel copies each parameter's size from its slot, so a
 * 4-byte int where the kernel takes 8 bytes reads garbage), and the dtype codes the kernels switch on
 * are DType's ordinals. Needs no GPU: the tensors are descriptions of fake device addresses.
 */
class ElementwiseKernelArgumentsTest {

    /** One PTX kernel parameter: bytes and alignment. */
    record Param(long size, long alignment) {
    }

    private static Tensor device(DType dtype, long... shape) {
        long bytes = Tensor.numel(shape) * dtype.byteSize();
        return Tensor.device(new DevicePointer(0x7f00_0000_0000L, bytes, 0), dtype, shape);
    }

    @Test
    void copyFillAddAndMergeArgumentsMatchThePtxParameters() {
        Tensor src = device(DType.BF16, 2, 64, 8, 128).slice(2, 2, 4); // a head slice: strided
        Tensor dst = device(DType.F32, 2, 64, 4, 128);
        StridedGeometry g = StridedGeometry.of(src, dst);
        assertMatches("usp4j_copy", ElementwiseKernels.copyArgs(src, dst, g));
        assertMatches("usp4j_fill", ElementwiseKernels.fillArgs(dst, 1f, StridedGeometry.of(dst)));
        assertMatches("usp4j_add", ElementwiseKernels.addArgs(dst, src, StridedGeometry.of(dst, src)));
        Tensor out = device(DType.F32, 2, 64, 4, 128);
        Tensor lse = device(DType.F32, 2, 4, 64);
        Tensor blockOut = device(DType.BF16, 2, 64, 4, 128);
        Tensor blockLse = device(DType.F32, 2, 4, 64);
        assertMatches("usp4j_merge_attention", ElementwiseKernels.mergeArgs(out, lse, blockOut, blockLse));
    }

    @Test
    void elementCountAndOffsetsStayInt64PastTwoToThe31() {
        // 64K tokens x 128 heads x 128 dims x 4 batches = 2^32 elements: the count must reach the kernel unwrapped.
        Tensor big = device(DType.BF16, 4, 65536, 128, 128);
        Tensor dst = device(DType.F32, 4, 65536, 128, 128);
        List<KernelArg> args = ElementwiseKernels.copyArgs(big, dst, StridedGeometry.of(big, dst));
        assertEquals(new KernelArg.Int64(4L * 65536 * 128 * 128), args.get(7));
        assertTrue(4L * 65536 * 128 * 128 > Integer.MAX_VALUE);
    }

    @Test
    void dtypeCodesAreTheOrdinalsTheKernelsSwitchOn() throws IOException {
        Path cu = Path.of("src/main/cuda/elementwise.cu");
        String source = Files.readString(cu);
        assertTrue(source.contains("case " + DType.BF16.ordinal() + ": return __bfloat162float"), "BF16 code");
        assertTrue(source.contains("case " + DType.F16.ordinal() + ": return __half2float"), "F16 code");
        assertTrue(source.contains("case " + DType.BF16.ordinal() + ": static_cast<__nv_bfloat16*>"), "BF16 store code");
        assertTrue(source.contains("case " + DType.F16.ordinal() + ": static_cast<__half*>"), "F16 store code");
        assertEquals(0, DType.F32.ordinal(), "F32 is the kernels' default case");
    }

    private static void assertMatches(String kernel, List<KernelArg> args) {
        List<Param> params = parameters(kernel);
        assertEquals(params.size(), args.size(), kernel + ": argument count");
        for (int i = 0; i < params.size(); i++) {
            KernelArg arg = args.get(i);
            assertEquals(params.get(i).size(), arg.layout().byteSize(), kernel + " parameter " + i + " size");
            assertEquals(params.get(i).alignment(), arg.layout().byteAlignment(), kernel + " parameter " + i + " alignment");
        }
    }

    /** The parameter list of {@code .visible .entry kernel(...)} in the shipped PTX. */
    private static List<Param> parameters(String kernel) {
        String ptx = ElementwiseKernels.ptx();
        int start = ptx.indexOf(".visible .entry " + kernel + "(");
        assertTrue(start >= 0, kernel + " missing from the PTX");
        String list = ptx.substring(start, ptx.indexOf(')', start));
        Pattern scalar = Pattern.compile("\\.param \\.(?:[usbf])(\\d+) ");
        Pattern array = Pattern.compile("\\.param \\.align (\\d+) \\.b8 \\w+\\[(\\d+)\\]");
        List<Param> params = new ArrayList<>();
        for (String line : list.split("\n")) {
            Matcher a = array.matcher(line);
            Matcher s = scalar.matcher(line);
            if (a.find()) {
                params.add(new Param(Long.parseLong(a.group(2)), Long.parseLong(a.group(1))));
            } else if (s.find()) {
                long bytes = Long.parseLong(s.group(1)) / 8;
                params.add(new Param(bytes, bytes));
            }
        }
        return params;
    }
}
