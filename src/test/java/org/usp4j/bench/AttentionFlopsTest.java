package org.usp4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Unmasked pairs against a brute-force count of the top-left causal mask, and the FLOP formulas. */
class AttentionFlopsTest {

    @ParameterizedTest
    @CsvSource({"1, 1", "5, 5", "7, 3", "3, 7", "64, 64", "0, 4", "4, 0"})
    void pairsMatchACountOfTheMask(long sq, long skv) {
        long causal = 0;
        for (long i = 0; i < sq; i++) {
            for (long j = 0; j < skv; j++) {
                if (j <= i) {
                    causal++;
                }
            }
        }
        assertEquals(causal, AttentionFlops.unmaskedPairs(sq, skv, true));
        assertEquals(sq * skv, AttentionFlops.unmaskedPairs(sq, skv, false));
    }

    @ParameterizedTest
    @CsvSource({"1, 16, 4096, 64, false", "2, 8, 1000, 128, true"})
    void forwardIsFourBhPairsDAndBackwardTwoAndAHalfTimesThat(long b, long h, long s, long d, boolean causal) {
        double pairs = causal ? s * (s + 1.0) / 2 : (double) s * s;
        assertEquals(4.0 * b * h * pairs * d, AttentionFlops.forward(b, h, s, d, causal), 1e-6);
        assertEquals(2.5 * 4.0 * b * h * pairs * d, AttentionFlops.backward(b, h, s, d, causal), 1e-6);
        assertEquals(AttentionFlops.backward(b, h, s, d, causal), AttentionFlops.of(Pass.BACKWARD, b, h, s, d, causal));
    }

    @ParameterizedTest
    @CsvSource({"-1, 4", "4, -1"})
    void negativeLengthsAreRefused(long sq, long skv) {
        assertThrows(IllegalArgumentException.class, () -> AttentionFlops.unmaskedPairs(sq, skv, true));
    }
}
