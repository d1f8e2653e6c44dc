package org.usp4j.launch.store;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.net.Socket;
import java.nio.charset.StandardCharsets;

/** The store's handshake spoken byte by byte over a plain socket, for tests that play a client or a server. */
final class RawStoreProtocol {

    private RawStoreProtocol() {
    }

    static byte[] helloBody(byte[] nonce) {
        return new StoreProtocol.Body(StoreProtocol.HELLO).i32(StoreProtocol.MAGIC).i16(StoreProtocol.VERSION)
                .string(nonce).bytes();
    }

    /** The whole hello frame (length prefix and body), for tests that send it slowly. */
    static byte[] helloFrame(byte[] nonce) {
        byte[] body = helloBody(nonce);
        byte[] frame = new byte[4 + body.length];
        frame[0] = (byte) (body.length >>> 24);
        frame[1] = (byte) (body.length >>> 16);
        frame[2] = (byte) (body.length >>> 8);
        frame[3] = (byte) body.length;
        System.arraycopy(body, 0, frame, 4, body.length);
        return frame;
    }

    /** Runs the client side of the handshake with {@code token}; returns once the server said OK. */
    static void authenticate(Socket s, String token) throws IOException {
        byte[] t = token.getBytes(StandardCharsets.UTF_8);
        byte[] nonce = TokenProofs.nonce();
        writeFrame(s, helloBody(nonce));
        StoreProtocol.Fields challenge = new StoreProtocol.Fields(readFrame(s));
        assertEquals(StoreProtocol.CHALLENGE, challenge.u8());
        byte[] serverNonce = challenge.stringBytes(TokenProofs.NONCE_BYTES, "nonce");
        challenge.stringBytes(TokenProofs.PROOF_BYTES, "proof");
        writeFrame(s, new StoreProtocol.Body(StoreProtocol.PROOF).string(TokenProofs.client(t, nonce, serverNonce))
                .bytes());
        byte[] ok = readFrame(s);
        assertEquals(StoreProtocol.OK, ok[0]);
    }

    /** Plays the server's side of a handshake with {@code token} on an accepted socket, saying OK at the end. */
    static void answerAsServer(Socket s, String token, long instance) throws IOException {
        byte[] t = token.getBytes(StandardCharsets.UTF_8);
        StoreProtocol.Fields hello = new StoreProtocol.Fields(readFrame(s));
        hello.u8();
        hello.i32();
        hello.i16();
        byte[] clientNonce = hello.stringBytes(TokenProofs.NONCE_BYTES, "nonce");
        byte[] serverNonce = TokenProofs.nonce();
        writeFrame(s, new StoreProtocol.Body(StoreProtocol.CHALLENGE).string(serverNonce)
                .string(TokenProofs.server(t, clientNonce, serverNonce)).bytes());
        readFrame(s); // the client's proof
        writeFrame(s, new StoreProtocol.Body(StoreProtocol.OK).i32(1024).i32(1024).i32(16).i64(60_000).i64(instance)
                .bytes());
    }

    static void writeFrame(Socket s, byte[] body) throws IOException {
        DataOutputStream out = new DataOutputStream(s.getOutputStream());
        out.writeInt(body.length);
        out.write(body);
        out.flush();
    }

    static byte[] readFrame(Socket s) throws IOException {
        DataInputStream in = new DataInputStream(s.getInputStream());
        byte[] body = new byte[in.readInt()];
        in.readFully(body);
        return body;
    }

    /** Reads one frame that must be a refusal and returns its message. */
    static String readRefusal(Socket s) throws IOException {
        StoreProtocol.Fields f = new StoreProtocol.Fields(readFrame(s));
        assertEquals(StoreProtocol.REFUSED, f.u8());
        return f.string(StoreProtocol.MAX_MESSAGE_BYTES, "message");
    }
}
