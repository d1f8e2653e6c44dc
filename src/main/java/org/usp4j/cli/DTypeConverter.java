package org.usp4j.cli;

import org.usp4j.tensor.DType;
import picocli.CommandLine.ITypeConverter;
import picocli.CommandLine.TypeConversionException;

/** Parses --dtype values: f32, bf16, f16 (any case) and the long spellings float32, bfloat16, float16. */
final class DTypeConverter implements ITypeConverter<DType> {

    @Override
    public DType convert(String value) {
        try {
            return DType.parse(value);
        } catch (IllegalArgumentException e) {
            throw new TypeConversionException("expected f32, bf16 or f16 but was '" + value + "'");
        }
    }
}
