/**
 * What a strategy needs from one rank's device, whatever it is: an attention kernel, scratch memory in
 * allocation scopes, and a few element-wise operations (copy, fill, add, the log-sum-exp merge). The CPU
 * and CUDA backends implement it.
 */
package org.usp4j.backend;
