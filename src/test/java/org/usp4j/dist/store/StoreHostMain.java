package org.usp4j.dist.store;

/** A standalone store in its own JVM for tests that kill it: prints "PORT n", then serves until killed. */
public final class StoreHostMain {

    private StoreHostMain() {
    }

    public static void main(String[] args) throws InterruptedException {
        StoreServer server = StoreServer.start("127.0.0.1", 0, args[0]);
        System.out.println("PORT " + server.port());
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
