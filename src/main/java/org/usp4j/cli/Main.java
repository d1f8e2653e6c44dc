package org.usp4j.cli;

/** Entry point of the {@code usp4j} command (placeholder until the commands land). */
public final class Main {

    private Main() {
    }

    public static void main(String[] args) {
        String version = Main.class.getPackage().getImplementationVersion();
        System.out.println("usp4j " + (version == null ? "dev" : version));
        System.out.println("usage: usp4j <command> [options]   (commands: attention, demo, bench, info, launch)");
    }
}
