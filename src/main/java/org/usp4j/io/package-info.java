/**
 * Safetensors files: reading and checking headers and tensors, and writing results through a temporary
 * file renamed into place.
 */
package org.usp4j.io;
