/**
 * The embedding API: the entry points ({@link org.usp4j.api.Usp4j}) that give a JVM framework in-process
 * CPU or GPU ranks, or this process's rank over its own NCCL communicator, and the attention layers
 * ({@link org.usp4j.api.AttentionLayer}) each rank runs on its own shard of the sequence. Values here
 * ({@link org.usp4j.api.Mesh}, {@link org.usp4j.api.AttentionOptions}) own nothing; worlds, ranks and
 * layers own what usp4j created for them and free it once, on close.
 */
package org.usp4j.api;
