/**
 * The implementation behind {@link org.usp4j.api}: worlds and ranks built on the communicators and
 * backends, layers that run a strategy on caller-owned shards, and the checks that refuse bad caller
 * tensors before any communication. Not exported from module org.usp4j.
 */
package org.usp4j.api.internal;
