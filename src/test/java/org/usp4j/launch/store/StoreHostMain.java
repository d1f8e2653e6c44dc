package org.usp4j.launch.store;

import java.time.Duration;

/**
 * A standalone store in its own JVM for tests that kill it or starve it: prints "PORT n", then serves
 * until killed. Arguments: the token, then optionally the handshake timeout in ms and the size of the
 * unauthenticated pool.
 */
public final class StoreHostMain {

    private StoreHostMain() {
    }

    public static void main(String[] args) throws InterruptedException {
        StoreLimits limits = StoreLimits.DEFAULT;
        if (args.length > 2) {
            int pool = Integer.parseInt(args[2]);
            limits = limits.withHandshakeTimeout(Duration.ofMillis(Long.parseLong(args[1])))
                    .withMaxUnauthenticated(pool, pool);
        }
        StoreServer server = StoreServer.start("127.0.0.1", 0, args[0], limits);
        System.out.println("PORT " + server.port());
        System.out.flush();
        Thread.sleep(Long.MAX_VALUE);
    }
}
