package org.usp4j.nativelib;

/**
 * A bound native function is not in the library that was loaded, typically because that library
 * is older than the release that introduced the function.
 */
public final class NativeFunctionUnavailableException extends UnsupportedOperationException {

    private static final long serialVersionUID = 1L;

    private final String function;

    public NativeFunctionUnavailableException(String function, String message) {
        super(message);
        this.function = function;
    }

    /** The C name of the missing function. */
    public String function() {
        return function;
    }
}
