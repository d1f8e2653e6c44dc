package org.usp4j.launch.store;

import java.io.ByteArrayOutputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.io.UncheckedIOException;
import java.net.SocketTimeoutException;
import java.nio.BufferUnderflowException;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;

/**
 * The store's wire format. Every message is one frame: a 4-byte big-endian length, then that many bytes
 * of body. A request body starts with an op byte, a response body with a status byte; then fields: a key
 * or string is a 16-bit length and UTF-8 bytes, a value a 32-bit length and bytes, numbers are 64-bit.
 * A connection starts with a mutual challenge-response (see {@link TokenProofs}): the client's
 * {@link #HELLO} carries its nonce, the server answers {@link #CHALLENGE} with its own nonce and its proof,
 * the client checks that proof and only then sends its own ({@link #PROOF}); nothing else is answered
 * before the server has checked it. The token itself never travels. Lengths are checked against the
 * limits before anything is allocated from them.
 */
final class StoreProtocol {

    /** "U4JS": tells a usp4j store client from anything else that connects to the port. */
    static final int MAGIC = 0x55344A53;
    /** 2: challenge-response handshake (1 sent the token itself). */
    static final short VERSION = 2;

    static final byte HELLO = 1;
    static final byte SET = 2;
    static final byte GET = 3;
    static final byte ADD = 4;
    static final byte WAIT = 5;
    static final byte CHECK = 6;
    static final byte DELETE = 7;
    static final byte DELETE_PREFIX = 8;
    /** The client's proof that it holds the token, sent once it has checked the server's. */
    static final byte PROOF = 9;

    static final byte OK = 0;
    static final byte VALUE = 1;
    static final byte NUMBER = 2;
    static final byte TIMEOUT = 3;
    static final byte KEYS = 4;
    /** The request failed; the connection stays usable. */
    static final byte ERROR = 5;
    /** The connection is refused (bad token, not a usp4j client, too many connections) and will close. */
    static final byte REFUSED = 6;
    /** The server's answer to a hello: its nonce and its proof that it holds the token. */
    static final byte CHALLENGE = 7;
    /** The store is full of connections just now; the client may try again (it will close). */
    static final byte BUSY = 8;

    /** Longest handshake frame (hello or proof): op, magic, version, a nonce or proof. */
    static final int MAX_HANDSHAKE_FRAME = 16 + TokenProofs.NONCE_BYTES;
    /** A deadline argument meaning "none": only the socket timeout and the frame timeout bound the read. */
    static final long NO_DEADLINE = Long.MIN_VALUE;
    /** Longest message string in an error reply. */
    static final int MAX_MESSAGE_BYTES = 4096;
    /** Longest wait a request may ask for. */
    static final long MAX_WAIT_MILLIS = 7L * 24 * 3600 * 1000;

    private StoreProtocol() {
    }

    /** A frame or field that breaks the format or the limits; the connection cannot continue. */
    static final class ProtocolException extends IOException {
        private static final long serialVersionUID = 1L;

        ProtocolException(String message) {
            super(message);
        }
    }

    /** The peer closed the connection between frames (a normal end, not a truncated frame). */
    static final class PeerClosedException extends EOFException {
        private static final long serialVersionUID = 1L;

        PeerClosedException() {
            super("connection closed by the peer");
        }
    }

    // ---- frames ----

    static void writeFrame(OutputStream out, byte[] body) throws IOException {
        byte[] header = {(byte) (body.length >>> 24), (byte) (body.length >>> 16), (byte) (body.length >>> 8),
                (byte) body.length};
        out.write(header);
        out.write(body);
        out.flush();
    }

    /**
     * Reads one frame of at most {@code maxFrame} bytes. The socket's SO_TIMEOUT is the tick: when it fires
     * before the frame has started, reading goes on while {@code keepIdling} says so (null: give up at
     * once). Once the first byte has arrived, the whole frame must follow within {@code frameTimeoutNanos},
     * and all of it must arrive before {@code deadline} (a {@link System#nanoTime} value, or
     * {@link #NO_DEADLINE}). Both are checked after every read, not only when a read times out, so a peer
     * that trickles one byte at a time cannot stretch a frame past them.
     */
    static byte[] readFrame(InputStream in, int maxFrame, BooleanSupplier keepIdling, long frameTimeoutNanos,
                            long deadline) throws IOException {
        long[] startedAt = {-1};
        byte[] header = new byte[4];
        fill(in, header, keepIdling, frameTimeoutNanos, deadline, startedAt);
        int length = ByteBuffer.wrap(header).getInt();
        if (length < 1 || length > maxFrame) {
            throw new ProtocolException("frame of " + Integer.toUnsignedString(length) + " bytes refused (limit "
                    + maxFrame + " bytes)");
        }
        byte[] body = new byte[length];
        fill(in, body, keepIdling, frameTimeoutNanos, deadline, startedAt);
        return body;
    }

    /** The deadline for a wait of {@code millis} from now. */
    static long deadlineIn(long millis) {
        return System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(millis);
    }

    private static void fill(InputStream in, byte[] buf, BooleanSupplier keepIdling, long frameTimeoutNanos,
                             long deadline, long[] startedAt) throws IOException {
        int n = 0;
        while (n < buf.length) {
            int r;
            try {
                r = in.read(buf, n, buf.length - n);
            } catch (SocketTimeoutException e) {
                if (keepIdling == null) {
                    throw e;
                }
                checkTime(frameTimeoutNanos, deadline, startedAt[0]);
                if (startedAt[0] < 0 && !keepIdling.getAsBoolean()) {
                    throw e;
                }
                continue;
            }
            if (r < 0) {
                if (startedAt[0] < 0) {
                    throw new PeerClosedException();
                }
                throw new EOFException("connection closed in the middle of a frame");
            }
            if (startedAt[0] < 0) {
                startedAt[0] = System.nanoTime();
            }
            n += r;
            if (n < buf.length) {
                checkTime(frameTimeoutNanos, deadline, startedAt[0]);
            }
        }
    }

    private static void checkTime(long frameTimeoutNanos, long deadline, long startedAt) throws SocketTimeoutException {
        long now = System.nanoTime();
        if (deadline != NO_DEADLINE && now - deadline >= 0) {
            throw new SocketTimeoutException("the frame did not arrive in time");
        }
        if (startedAt >= 0 && now - startedAt > frameTimeoutNanos) {
            throw new SocketTimeoutException("incomplete frame: the rest did not arrive within "
                    + frameTimeoutNanos / 1_000_000 + " ms");
        }
    }

    // ---- bodies ----

    /** Builds a body field by field. */
    static final class Body {
        private final ByteArrayOutputStream bytes = new ByteArrayOutputStream(64);
        private final DataOutputStream out = new DataOutputStream(bytes);

        Body(byte opOrStatus) {
            u8(opOrStatus);
        }

        Body u8(byte b) {
            try {
                out.writeByte(b);
            } catch (IOException e) {
                throw new UncheckedIOException(e); // a byte array stream does not fail
            }
            return this;
        }

        Body i16(int v) {
            try {
                out.writeShort(v);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return this;
        }

        Body i32(int v) {
            try {
                out.writeInt(v);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return this;
        }

        Body i64(long v) {
            try {
                out.writeLong(v);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            return this;
        }

        /** A string with a 16-bit length: keys, tokens, messages (callers check the length first). */
        Body string(byte[] utf8) {
            i16(utf8.length);
            bytes.writeBytes(utf8);
            return this;
        }

        Body string(String s) {
            return string(s.getBytes(StandardCharsets.UTF_8));
        }

        Body strings(Collection<String> list) {
            i16(list.size());
            list.forEach(this::string);
            return this;
        }

        /** A 16-bit count, then each already-encoded key. */
        Body keys(List<byte[]> utf8Keys) {
            i16(utf8Keys.size());
            utf8Keys.forEach(this::string);
            return this;
        }

        Body value(byte[] v) {
            i32(v.length);
            bytes.writeBytes(v);
            return this;
        }

        byte[] bytes() {
            return bytes.toByteArray();
        }
    }

    /** Reads a body field by field; every length is checked against the bytes left and a limit. */
    static final class Fields {
        private final ByteBuffer buf;

        Fields(byte[] body) {
            this.buf = ByteBuffer.wrap(body);
        }

        byte u8() throws ProtocolException {
            try {
                return buf.get();
            } catch (BufferUnderflowException e) {
                throw truncated();
            }
        }

        short i16() throws ProtocolException {
            try {
                return buf.getShort();
            } catch (BufferUnderflowException e) {
                throw truncated();
            }
        }

        int i32() throws ProtocolException {
            try {
                return buf.getInt();
            } catch (BufferUnderflowException e) {
                throw truncated();
            }
        }

        long i64() throws ProtocolException {
            try {
                return buf.getLong();
            } catch (BufferUnderflowException e) {
                throw truncated();
            }
        }

        /** A 16-bit-length string of at most {@code maxBytes} bytes, named {@code what} in errors. */
        String string(int maxBytes, String what) throws ProtocolException {
            return new String(bytes(Short.toUnsignedInt(i16()), maxBytes, what), StandardCharsets.UTF_8);
        }

        byte[] stringBytes(int maxBytes, String what) throws ProtocolException {
            return bytes(Short.toUnsignedInt(i16()), maxBytes, what);
        }

        byte[] value(int maxBytes) throws ProtocolException {
            return bytes(i32(), maxBytes, "value");
        }

        List<String> strings(int maxCount, int maxBytes, String what) throws ProtocolException {
            int count = Short.toUnsignedInt(i16());
            if (count > maxCount) {
                throw new ProtocolException(count + " " + what + "s in one message refused (limit " + maxCount + ")");
            }
            List<String> list = new ArrayList<>(count);
            for (int i = 0; i < count; i++) {
                list.add(string(maxBytes, what));
            }
            return list;
        }

        void end() throws ProtocolException {
            if (buf.hasRemaining()) {
                throw new ProtocolException(buf.remaining() + " unexpected bytes at the end of a message");
            }
        }

        private byte[] bytes(int length, int maxBytes, String what) throws ProtocolException {
            if (length < 0 || length > maxBytes) {
                throw new ProtocolException(what + " of " + Integer.toUnsignedString(length)
                        + " bytes refused (limit " + maxBytes + " bytes)");
            }
            if (length > buf.remaining()) {
                throw truncated();
            }
            byte[] out = new byte[length];
            buf.get(out);
            return out;
        }

        private static ProtocolException truncated() {
            return new ProtocolException("truncated message");
        }
    }

    /** The UTF-8 length of a key, checked against the limit; names the key (shortened) in the error. */
    static byte[] keyBytes(String key, int maxKeyBytes) {
        if (key == null || key.isEmpty()) {
            throw new IllegalArgumentException("store keys must be non-empty, got " + (key == null ? "null" : "\"\""));
        }
        byte[] bytes = key.getBytes(StandardCharsets.UTF_8);
        if (bytes.length > maxKeyBytes) {
            throw new IllegalArgumentException("store key of " + bytes.length + " bytes exceeds the limit of "
                    + maxKeyBytes + " bytes: '" + shorten(key) + "'");
        }
        return bytes;
    }

    static String shorten(String s) {
        return s.length() <= 64 ? s : s.substring(0, 61) + "...";
    }

    static byte[] truncatedMessage(String message) {
        byte[] bytes = message.getBytes(StandardCharsets.UTF_8);
        if (bytes.length <= MAX_MESSAGE_BYTES) {
            return bytes;
        }
        return shorten(message).getBytes(StandardCharsets.UTF_8);
    }
}
