package org.usp4j.cli;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.CategoryChart;
import org.knowm.xchart.CategoryChartBuilder;
import org.knowm.xchart.CategorySeries;
import org.knowm.xchart.VectorGraphicsEncoder;
import org.knowm.xchart.style.Styler;
import org.usp4j.io.AtomicFiles;

/**
 * Throughput against sequence length, one line per mesh and pass, drawn with XChart (an optional
 * dependency: only {@code bench --plot} loads this class) and written atomically as PNG or SVG.
 */
final class ThroughputPlot {

    /** The file formats, chosen by the file name's extension. */
    enum Format {
        PNG,
        SVG;

        /** The format of {@code file}'s extension, or null when it is neither .png nor .svg. */
        static Format of(Path file) {
            String name = file.getFileName() == null ? "" : file.getFileName().toString().toLowerCase(Locale.ROOT);
            return name.endsWith(".png") ? PNG : name.endsWith(".svg") ? SVG : null;
        }
    }

    private ThroughputPlot() {
    }

    /** Draws {@code rows} into {@code file}; TFLOP/s when the best figure reaches 1000 GFLOP/s, else GFLOP/s. */
    static void write(Path file, Format format, String title, List<BenchRow> rows) throws IOException {
        System.setProperty("java.awt.headless", "true"); // no display needed, and none asked for
        boolean tera = rows.stream().mapToDouble(BenchRow::gflops).max().orElse(0) >= 1000;
        // Sequence lengths as evenly spaced categories: a doubling series reads like a log2 axis, labelled
        // with the lengths themselves.
        CategoryChart chart = new CategoryChartBuilder().width(960).height(600).title(title)
                .xAxisTitle("sequence length (tokens)").yAxisTitle(tera ? "TFLOP/s" : "GFLOP/s").build();
        chart.getStyler().setDefaultSeriesRenderStyle(CategorySeries.CategorySeriesRenderStyle.Line);
        chart.getStyler().setLegendPosition(Styler.LegendPosition.OutsideE);
        chart.getStyler().setMarkerSize(7);
        chart.getStyler().setOverlapped(true); // lines share the category positions
        chart.getStyler().setYAxisMin(0.0);
        Map<String, List<BenchRow>> series = new LinkedHashMap<>();
        for (BenchRow r : rows) {
            series.computeIfAbsent("mesh " + r.mesh() + " " + r.pass(), k -> new ArrayList<>()).add(r);
        }
        for (Map.Entry<String, List<BenchRow>> e : series.entrySet()) {
            List<BenchRow> points = e.getValue().stream().sorted((a, b) -> Long.compare(a.seq(), b.seq())).toList();
            List<String> x = points.stream().map(r -> Long.toString(r.seq())).toList();
            List<Double> y = points.stream().map(r -> tera ? r.tflops() : r.gflops()).toList();
            chart.addSeries(e.getKey(), x, y);
        }
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        switch (format) {
            case PNG -> BitmapEncoder.saveBitmap(chart, bytes, BitmapEncoder.BitmapFormat.PNG);
            case SVG -> VectorGraphicsEncoder.saveVectorGraphic(chart, bytes,
                    VectorGraphicsEncoder.VectorGraphicsFormat.SVG);
        }
        AtomicFiles.write(file, bytes.toByteArray());
    }
}
