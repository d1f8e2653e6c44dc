package org.usp4j.nativelib;

import static org.junit.jupiter.api.Assertions.*;

import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class NativeResourceTest {

    static final class Counting extends NativeResource {
        final AtomicInteger releases = new AtomicInteger();

        @Override
        protected String describe() {
            return "test resource";
        }

        @Override
        protected void release() {
            releases.incrementAndGet();
        }

        void use() {
            checkOpen();
        }
    }

    @Test
    void releasedExactlyOnceEvenUnderConcurrentCloses() throws InterruptedException {
        Counting r = new Counting();
        Thread[] threads = new Thread[8];
        for (int i = 0; i < threads.length; i++) {
            threads[i] = Thread.ofPlatform().start(r::close);
        }
        for (Thread t : threads) {
            t.join();
        }
        r.close();
        assertEquals(1, r.releases.get());
        var e = assertThrows(IllegalStateException.class, r::use);
        assertEquals("test resource is closed", e.getMessage());
    }

    @Test
    void versionsParseAndOrderNumerically() {
        assertEquals(LibraryVersion.of(2, 28, 3), LibraryVersion.parse("2.28.3"));
        assertEquals(LibraryVersion.of(9, 0, 0), LibraryVersion.parse("9"));
        assertTrue(LibraryVersion.parse("2.9.1").compareTo(LibraryVersion.parse("2.18")) < 0);
        assertThrows(IllegalArgumentException.class, () -> LibraryVersion.parse("2.x"));
        assertTrue(NativeLibrary.NCCL.accepts(LibraryVersion.of(2, 18, 0)));
        assertFalse(NativeLibrary.NCCL.accepts(LibraryVersion.of(2, 17, 9)));
        assertFalse(NativeLibrary.CUDNN.accepts(LibraryVersion.of(10, 0, 0)));
    }
}
