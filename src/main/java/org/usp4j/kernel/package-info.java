/**
 * One device's attention over one block of queries and keys ({@link org.usp4j.kernel.AttentionKernel}),
 * the {@link org.usp4j.kernel.Mask} value both backends understand, the shape rules of a kernel call, and
 * the float64 reference every kernel is tested against.
 */
package org.usp4j.kernel;
