package org.usp4j.nativelib;

import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/** Test helper: what the generated bindings declare, found by reflection. */
public final class BoundFunctions {

    private BoundFunctions() {
    }

    /** Names of the C functions a generated header class binds (each has a {@code name$address()} method). */
    public static List<String> functions(Class<?> headerClass) {
        return java.util.Arrays.stream(headerClass.getDeclaredMethods())
                .filter(m -> Modifier.isPublic(m.getModifiers()) && m.getName().endsWith("$address")
                        && m.getParameterCount() == 0)
                .map(m -> m.getName().substring(0, m.getName().length() - "$address".length()))
                .sorted()
                .toList();
    }

    /** The int constants (enum values and macros) a generated header class declares, by name. */
    public static Map<String, Integer> intConstants(Class<?> headerClass) {
        Map<String, Integer> constants = new TreeMap<>();
        for (Method m : headerClass.getDeclaredMethods()) {
            if (Modifier.isPublic(m.getModifiers()) && Modifier.isStatic(m.getModifiers())
                    && m.getParameterCount() == 0 && m.getReturnType() == int.class) {
                try {
                    constants.put(m.getName(), (Integer) m.invoke(null));
                } catch (ReflectiveOperationException e) {
                    throw new AssertionError(e);
                }
            }
        }
        return constants;
    }

    /** Calls {@code name$address()}, which resolves the symbol through the bindings' own lookup. */
    public static Object address(Class<?> headerClass, String function) throws ReflectiveOperationException {
        return headerClass.getMethod(function + "$address").invoke(null);
    }
}
