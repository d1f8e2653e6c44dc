package org.usp4j.cli;

import org.usp4j.sp.RingAlgorithm;
import org.usp4j.sp.RingAlgorithms;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** {@code --ring-algo NAME}: a registered ring algorithm; an unknown name is a usage error listing the known ones. */
final class RingAlgoOption implements ITypeConverter<RingAlgorithm> {

    /** The option's label in help texts. */
    static final String LABEL = "ring|allgather";

    @Override
    public RingAlgorithm convert(String value) {
        try {
            return RingAlgorithms.named(value);
        } catch (IllegalArgumentException e) {
            throw new TypeConversionException(e.getMessage());
        }
    }
}
