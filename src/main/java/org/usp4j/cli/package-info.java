/**
 * The {@code usp4j} command line (picocli): demo, attention, random-input, bench, info, launch. Commands
 * parse and check their options, then run everything through the engine; errors become one
 * {@code error:} line and an exit code before any native work.
 */
package org.usp4j.cli;
