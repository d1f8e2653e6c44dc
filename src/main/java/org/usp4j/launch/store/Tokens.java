package org.usp4j.launch.store;

import java.nio.charset.StandardCharsets;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * The job's shared secret: what each side of a store connection proves it holds, in an HMAC
 * challenge-response; the token itself never travels.
 */
public final class Tokens {

    /** Longest token accepted, in UTF-8 bytes. */
    public static final int MAX_TOKEN_BYTES = 1024;

    private static final SecureRandom RANDOM = new SecureRandom();

    private Tokens() {
    }

    /** A fresh random token: 128 bits from {@link SecureRandom}, as 32 hex digits. */
    public static String generate() {
        byte[] bytes = new byte[16];
        RANDOM.nextBytes(bytes);
        return HexFormat.of().formatHex(bytes);
    }

    /** The token's bytes, after checking that it is non-blank and at most {@value #MAX_TOKEN_BYTES} bytes. */
    static byte[] encode(String token) {
        if (token == null || token.isBlank()) {
            throw new IllegalArgumentException("the store token must be a non-blank shared secret, got "
                    + (token == null ? "null" : "a blank string"));
        }
        byte[] bytes = token.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > MAX_TOKEN_BYTES) {
            throw new IllegalArgumentException("the store token has " + bytes.length + " bytes, more than "
                    + MAX_TOKEN_BYTES);
        }
        return bytes;
    }
}
