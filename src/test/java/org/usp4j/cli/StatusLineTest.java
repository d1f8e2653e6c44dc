package org.usp4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class StatusLineTest {

    @Test
    void rewritesOneLineInPlaceAndClearsIt() {
        StringWriter sink = new StringWriter();
        StatusLine line = new StatusLine(new PrintWriter(sink), true);
        line.show("forward ...");
        line.show("backward ...");
        line.clear();
        line.clear(); // nothing showing: nothing to erase
        assertEquals("\r\033[Kforward ...\r\033[Kbackward ...\r\033[K", sink.toString());
    }

    @Test
    void staysSilentWhenStderrIsNotATerminal() {
        StringWriter sink = new StringWriter();
        StatusLine line = new StatusLine(new PrintWriter(sink), false);
        line.show("forward ...");
        line.clear();
        assertEquals("", sink.toString());
    }
}
