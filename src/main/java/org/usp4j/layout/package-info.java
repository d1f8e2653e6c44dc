/**
 * The arithmetic of dealing a sequence (or packed sequences) over U x R ranks, in plain numbers: which
 * global positions each rank holds, as runs, and whether a length can be dealt. Both the public
 * {@code api.SequenceLayout} and the strategies' {@code sp.SequenceLayout} compute with it; it names
 * neither.
 */
package org.usp4j.layout;
