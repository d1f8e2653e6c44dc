package org.usp4j.launch.store;

import java.nio.charset.StandardCharsets;
import java.security.GeneralSecurityException;
import java.security.MessageDigest;
import java.security.SecureRandom;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * The handshake's proofs that a side holds the job's token without sending it: HMAC-SHA256, keyed with
 * the token, over a label naming the side and both sides' fresh nonces. Each connection has new nonces
 * from both ends, so a proof is good for that connection only; the labels differ, so a server's proof
 * can never be reflected back as a client's. A client checks the server's proof before it sends its own,
 * so a listener without the token (an impostor on the port, another job's store) gets nothing it could
 * replay, only the client's nonce.
 */
final class TokenProofs {

    static final int NONCE_BYTES = 32;
    static final int PROOF_BYTES = 32;

    private static final String ALGORITHM = "HmacSHA256";
    private static final byte[] SERVER = "usp4j store v2: server proof".getBytes(StandardCharsets.US_ASCII);
    private static final byte[] CLIENT = "usp4j store v2: client proof".getBytes(StandardCharsets.US_ASCII);
    private static final SecureRandom RANDOM = new SecureRandom();

    private TokenProofs() {
    }

    static byte[] nonce() {
        byte[] n = new byte[NONCE_BYTES];
        RANDOM.nextBytes(n);
        return n;
    }

    /** What the server sends to show it holds {@code token}. */
    static byte[] server(byte[] token, byte[] clientNonce, byte[] serverNonce) {
        return proof(token, SERVER, clientNonce, serverNonce);
    }

    /** What the client sends to show it holds {@code token}. */
    static byte[] client(byte[] token, byte[] clientNonce, byte[] serverNonce) {
        return proof(token, CLIENT, clientNonce, serverNonce);
    }

    /** Constant-time comparison, so that timing says nothing about how much of a forged proof was right. */
    static boolean matches(byte[] expected, byte[] presented) {
        return MessageDigest.isEqual(expected, presented);
    }

    private static byte[] proof(byte[] token, byte[] label, byte[] clientNonce, byte[] serverNonce) {
        if (clientNonce.length != NONCE_BYTES || serverNonce.length != NONCE_BYTES) {
            throw new IllegalArgumentException("nonces must have " + NONCE_BYTES + " bytes");
        }
        try {
            Mac mac = Mac.getInstance(ALGORITHM);
            mac.init(new SecretKeySpec(token, ALGORITHM));
            mac.update(label); // fixed lengths throughout, so the concatenation is unambiguous
            mac.update(clientNonce);
            mac.update(serverNonce);
            return mac.doFinal();
        } catch (GeneralSecurityException e) {
            throw new IllegalStateException("the JDK has no " + ALGORITHM, e); // every JDK must provide it
        }
    }
}
