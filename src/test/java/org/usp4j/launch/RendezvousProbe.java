package org.usp4j.launch;

import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.util.HexFormat;

/**
 * A rank for the multi-process tests: detects its environment, joins the rendezvous, receives a 128-byte
 * "unique id" from rank 0 (the NCCL id's size), prints what it saw, passes a barrier and leaves. With
 * argument {@code root-dies}, rank 0 halts right after joining.
 */
public final class RendezvousProbe {

    private RendezvousProbe() {
    }

    public static void main(String[] args) throws NoSuchAlgorithmException {
        boolean rootDies = args.length > 0 && args[0].equals("root-dies");
        LaunchEnvironment env = LaunchEnvironment.detect();
        try (Rendezvous rdzv = Rendezvous.join(env)) {
            if (rootDies && env.rank() == 0) {
                System.out.println("rank 0 halting");
                System.out.flush();
                Runtime.getRuntime().halt(7); // no shutdown hooks, no goodbye: the store dies with the process
            }
            byte[] id = rdzv.broadcast("nccl/unique-id", () -> {
                byte[] b = new byte[128];
                new SecureRandom().nextBytes(b);
                return b;
            });
            String digest = HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(id)).substring(0, 16);
            System.out.println("rank " + env.rank() + " of " + env.worldSize() + " local " + env.localRank() + "/"
                    + env.localWorldSize() + " from " + env.source() + " id " + digest + " (" + id.length + " bytes)");
            rdzv.barrier("done");
        } catch (RendezvousException | IllegalArgumentException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }
}
