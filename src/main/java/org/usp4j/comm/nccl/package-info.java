/**
 * The communicator over NCCL for one process's rank: endpoints on a communication stream ordered by
 * events with compute, splits, the per-rank watchdog (asynchronous errors, time-outs, heartbeats) that
 * aborts every communicator of a failed rank, and borrowed communicators a caller owns.
 */
package org.usp4j.comm.nccl;
