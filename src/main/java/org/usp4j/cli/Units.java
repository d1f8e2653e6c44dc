package org.usp4j.cli;

import java.util.Locale;

/** How commands print rates and sizes for people. */
final class Units {

    private Units() {
    }

    /** FLOP/s as GFLOP/s, or TFLOP/s from 1000 GFLOP/s on. */
    static String flopRate(double flopsPerSecond) {
        double g = flopsPerSecond * 1e-9;
        return g >= 1000 ? String.format(Locale.ROOT, "%.1f TFLOP/s", g * 1e-3)
                : String.format(Locale.ROOT, "%.1f GFLOP/s", g);
    }

    /** Bytes in binary units: "0 B", "512 B", "6.00 MiB". */
    static String bytes(long bytes) {
        if (bytes < 1024) {
            return bytes + " B";
        }
        String[] units = {"KiB", "MiB", "GiB", "TiB"};
        double v = bytes;
        int u = -1;
        while (v >= 1024 && u < units.length - 1) {
            v /= 1024;
            u++;
        }
        return String.format(Locale.ROOT, "%.2f %s", v, units[u]);
    }

    /** Seconds with three decimals. */
    static String seconds(double seconds) {
        return String.format(Locale.ROOT, "%.3f s", seconds);
    }
}
