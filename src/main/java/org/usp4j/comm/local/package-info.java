/**
 * The in-process {@link org.usp4j.comm.Communicator}: ranks are threads of one JVM exchanging host
 * tensors through shared memory. {@link org.usp4j.comm.local.LocalWorld} makes the P communicators and
 * runs a function on P threads; it is the CPU backend's transport and the test harness of every strategy.
 */
package org.usp4j.comm.local;
