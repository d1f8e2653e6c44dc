package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

/** Progress shows the phase with its elapsed seconds on a terminal, clears the line, and is silent otherwise. */
class ProgressTest {

    @Test
    void showsThePhaseAndClearsTheLineOnClose() {
        StringWriter sink = new StringWriter();
        try (Progress p = new Progress(new StatusLine(new PrintWriter(sink), true))) {
            p.phase("USP forward on 4 ranks");
        }
        String s = sink.toString();
        assertTrue(s.startsWith("\r\033[KUSP forward on 4 ranks ... 0.0 s"), s);
        assertTrue(s.endsWith("\r\033[K"), s);
    }

    @Test
    void silentWhenStderrIsNotATerminal() {
        StringWriter sink = new StringWriter();
        try (Progress p = new Progress(new StatusLine(new PrintWriter(sink), false))) {
            p.phase("USP forward on 4 ranks");
        }
        assertEquals("", sink.toString());
    }

    @Test
    void unitsForPeople() {
        assertEquals("0 B", Units.bytes(0));
        assertEquals("1023 B", Units.bytes(1023));
        assertEquals("1.00 KiB", Units.bytes(1024));
        assertEquals("8.00 MiB", Units.bytes(8L << 20));
        assertEquals("999.0 GFLOP/s", Units.flopRate(999e9));
        assertEquals("1.5 TFLOP/s", Units.flopRate(1.5e12));
        assertEquals("1.250 s", Units.seconds(1.25));
    }
}
