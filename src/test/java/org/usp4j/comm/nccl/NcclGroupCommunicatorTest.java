package org.usp4j.comm.nccl;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.Timeout;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.usp4j.api.Mesh;
import org.usp4j.comm.Communicator;
import org.usp4j.comm.TrafficKind;
import org.usp4j.comm.Transfer;
import org.usp4j.launch.LaunchEnvironment;
import org.usp4j.launch.Rendezvous;
import org.usp4j.sp.MeshGroups;
import org.usp4j.tensor.DType;
import org.usp4j.tensor.DevicePointer;
import org.usp4j.tensor.Tensor;

/**
 * The NCCL communicator over {@link FakeNccl}: which NCCL calls each operation makes and on which stream,
 * where the bytes land (every block checked against the rank and block it came from), the byte
 * accounting against the in-process communicator's formulas, splits, argument checks before any NCCL
 * call, and clean shutdown.
 */
@Timeout(60)
class NcclGroupCommunicatorTest {

    private static final Duration TIMEOUT = Duration.ofSeconds(20);

    /** 100 r + 10 j + i: rank r's element i of block j. */
    private static float tag(int rank, int block, int i) {
        return 100 * rank + 10 * block + i;
    }

    @ParameterizedTest(name = "native ncclAlltoAll {0}")
    @ValueSource(booleans = {false, true})
    void allToAllSendsBlockJToRankJAndChargesTheBytesOthersReceive(boolean nativeAllToAll) throws Exception {
        int n = 3;
        int per = 4;
        FakeNccl nccl = new FakeNccl(n, nativeAllToAll);
        List<float[]> received = FakeRanks.values(FakeRanks.run(nccl, n, TIMEOUT, true, r -> {
            try (Arena arena = Arena.ofShared()) {
                Tensor send = HostDeviceBackend.deviceTensor(DType.F32, n, per);
                Tensor recv = HostDeviceBackend.deviceTensor(DType.F32, n, per);
                for (int j = 0; j < n; j++) {
                    for (int i = 0; i < per; i++) {
                        HostDeviceBackend.host(send).set(tag(r.rank(), j, i), j, i);
                    }
                }
                r.world().allToAll(send, recv);
                assertEquals((n - 1) * per * 4L, r.world().traffic().bytesSent(TrafficKind.ALL_TO_ALL));
                assertEquals(0, r.world().traffic().bytesSent(TrafficKind.P2P));
                return toArray(recv);
            }
        }));
        for (int r = 0; r < n; r++) {
            for (int j = 0; j < n; j++) {
                for (int i = 0; i < per; i++) {
                    assertEquals(tag(j, r, i), received.get(r)[j * per + i], "rank " + r + " block " + j + " element " + i);
                }
            }
        }
        List<String> calls = worldEndpoint(nccl, 0).calls;
        if (nativeAllToAll) {
            assertEquals(List.of("allToAll 4xFLOAT32 on compute"), calls.subList(0, 1));
        } else {
            List<String> expected = new ArrayList<>(List.of("groupStart"));
            for (int p = 0; p < n; p++) {
                expected.add("send 4xFLOAT32 to " + p + " on compute");
                expected.add("recv 4xFLOAT32 from " + p + " on compute");
            }
            expected.add("groupEnd");
            assertEquals(expected, calls.subList(0, expected.size()));
        }
    }

    @Test
    void allGatherPlacesRankIsBlockAtIAlsoInPlace() throws Exception {
        int n = 3;
        FakeNccl nccl = new FakeNccl(n, false);
        List<float[][]> got = FakeRanks.values(FakeRanks.run(nccl, n, TIMEOUT, true, r -> {
            try (Arena arena = Arena.ofShared()) {
                Tensor send = HostDeviceBackend.deviceTensor(DType.BF16, 2, 3);
                for (int i = 0; i < 6; i++) {
                    HostDeviceBackend.host(send).set(tag(r.rank(), 0, i), i / 3, i % 3);
                }
                Tensor recv = HostDeviceBackend.deviceTensor(DType.BF16, n, 2, 3);
                r.world().allGather(send, recv);
                // in place: rank r's block already sits at r
                Tensor inPlace = HostDeviceBackend.deviceTensor(DType.BF16, n, 2, 3);
                Tensor mine = inPlace.slice(0, r.rank(), 1).view(2, 3);
                backendCopy(send, mine);
                r.world().allGather(mine, inPlace);
                assertEquals(2L * (n - 1) * 6 * 2, r.world().traffic().bytesSent(TrafficKind.ALL_GATHER));
                return new float[][] {toArray(recv), toArray(inPlace)};
            }
        }));
        for (int r = 0; r < n; r++) {
            for (float[] gathered : got.get(r)) {
                for (int src = 0; src < n; src++) {
                    for (int i = 0; i < 6; i++) {
                        assertEquals(DType.BF16.round(tag(src, 0, i)), gathered[src * 6 + i]);
                    }
                }
            }
        }
    }

    /**
     * A ring step: the send buffer is written by slow work on the (queued) compute stream right before
     * sendRecv; the transfer, on the communication stream, must wait for it; await orders the compute
     * stream after the transfer, so a synchronize of compute sees the received block.
     */
    @Test
    void sendRecvRunsOnTheCommStreamAfterTheComputeWorkAndAwaitOrdersComputeAfterIt() throws Exception {
        int n = 3;
        FakeNccl nccl = new FakeNccl(n, false);
        List<float[]> got = FakeRanks.values(FakeRanks.run(nccl, n, TIMEOUT, false, r -> {
            try (Arena arena = Arena.ofShared()) {
                Tensor k = HostDeviceBackend.deviceTensor(DType.F32, 8);
                Tensor v = HostDeviceBackend.deviceTensor(DType.F16, 8);
                Tensor kIn = HostDeviceBackend.deviceTensor(DType.F32, 8);
                Tensor vIn = HostDeviceBackend.deviceTensor(DType.F16, 8);
                r.compute().enqueue(() -> {
                    sleep(300);
                    for (int i = 0; i < 8; i++) {
                        HostDeviceBackend.host(k).set(tag(r.rank(), 0, i), i);
                        HostDeviceBackend.host(v).set(tag(r.rank(), 1, i) / 8, i);
                    }
                });
                int right = (r.rank() + 1) % n;
                int left = (r.rank() + n - 1) % n;
                Transfer t = r.world().sendRecv(List.of(k, v), right, List.of(kIn, vIn), left);
                assertEquals(8 * 4 + 8 * 2, r.world().traffic().bytesSent(TrafficKind.P2P));
                t.await();
                t.await(); // a second await changes nothing
                r.compute().synchronize();
                float[] out = new float[16];
                System.arraycopy(toArray(kIn), 0, out, 0, 8);
                System.arraycopy(toArray(vIn), 0, out, 8, 8);
                // to myself: never charged
                Transfer self = r.world().sendRecv(List.of(k), r.rank(), List.of(kIn), r.rank());
                self.await();
                assertEquals(8 * 4 + 8 * 2, r.world().traffic().bytesSent(TrafficKind.P2P));
                return out;
            }
        }));
        for (int r = 0; r < n; r++) {
            int left = (r + n - 1) % n;
            for (int i = 0; i < 8; i++) {
                assertEquals(tag(left, 0, i), got.get(r)[i]);
                assertEquals(DType.F16.round(tag(left, 1, i) / 8), got.get(r)[8 + i]);
            }
        }
        List<String> calls = worldEndpoint(nccl, 1).calls;
        assertEquals(List.of("groupStart", "send 8xFLOAT32 to 2 on comm-1", "send 8xFLOAT16 to 2 on comm-1",
                "recv 8xFLOAT32 from 0 on comm-1", "recv 8xFLOAT16 from 0 on comm-1", "groupEnd"), calls.subList(0, 6));
    }

    @Test
    void splitsFollowTheMeshAndShareTheRanksTrafficCounter() throws Exception {
        int n = 4;
        Mesh mesh = new Mesh(2, 2);
        FakeNccl nccl = new FakeNccl(n, true);
        List<List<Object>> got = FakeRanks.values(FakeRanks.run(nccl, n, TIMEOUT, true, r -> {
            try (MeshGroups groups = MeshGroups.split(mesh, r.world()); Arena arena = Arena.ofShared()) {
                NcclGroupCommunicator u = (NcclGroupCommunicator) groups.ulysses();
                NcclGroupCommunicator ring = (NcclGroupCommunicator) groups.ring();
                assertSame(r.world().traffic(), u.traffic());
                assertSame(r.world().traffic(), ring.traffic());
                assertEquals(mesh.ulyssesRank(r.rank()), u.rank());
                assertEquals(mesh.ringRank(r.rank()), ring.rank());
                // the groups really are the mesh's: an all-gather of world ranks over each
                Tensor me = HostDeviceBackend.deviceTensor(DType.F32, 1);
                HostDeviceBackend.host(me).set(r.rank(), 0);
                Tensor ringRanks = HostDeviceBackend.deviceTensor(DType.F32, 2);
                ring.allGather(me, ringRanks);
                return List.of(u.worldRanks(), ring.worldRanks(), u.groupName(), ring.groupName(),
                        List.of(toArray(ringRanks)[0], toArray(ringRanks)[1]));
            }
        }));
        for (int r = 0; r < n; r++) {
            int[] uGroup = mesh.ulyssesGroup(mesh.ringRank(r));
            int[] ringGroup = mesh.ringGroup(mesh.ulyssesRank(r));
            assertEquals(List.of(uGroup[0], uGroup[1]), got.get(r).get(0));
            assertEquals(List.of(ringGroup[0], ringGroup[1]), got.get(r).get(1));
            assertEquals(List.of((float) ringGroup[0], (float) ringGroup[1]), got.get(r).get(4));
        }
        assertEquals(got.get(0).get(2), got.get(1).get(2), "ranks 0 and 1 share a Ulysses group name");
        assertEquals(got.get(0).get(3), got.get(2).get(3), "ranks 0 and 2 share a ring name");
        assertTrue(nccl.live().isEmpty(), "every NCCL communicator was destroyed: " + nccl.live());
        for (FakeNccl.Endpoint e : nccl.endpoints()) {
            assertEquals(1, e.calls.stream().filter(c -> c.equals("destroy")).count(), e + " destroyed once");
            assertTrue(e.calls.stream().noneMatch(c -> c.equals("abort")), e + " not aborted");
        }
    }

    @Test
    void everyBadArgumentIsRefusedBeforeAnyNcclCall() throws Exception {
        FakeNccl nccl = new FakeNccl(2, false);
        FakeRanks.values(FakeRanks.run(nccl, 2, TIMEOUT, true, r -> {
            if (r.rank() == 1) {
                return null;
            }
            NcclGroupCommunicator c = r.world();
            try (Arena arena = Arena.ofShared()) {
                Tensor a = HostDeviceBackend.deviceTensor(DType.F32, 4, 6);
                Tensor b = HostDeviceBackend.deviceTensor(DType.F32, 4, 6);
                Tensor host = Tensor.allocate(arena, DType.F32, 4, 6);
                Tensor bf = HostDeviceBackend.deviceTensor(DType.BF16, 4, 6);
                Tensor odd = HostDeviceBackend.deviceTensor(DType.F32, 3, 5);
                Tensor odd2 = HostDeviceBackend.deviceTensor(DType.F32, 3, 5);
                Tensor strided = a.transpose(0, 1);
                Tensor otherDevice = Tensor.device(new DevicePointer(a.devicePointer().address(), 96, 3), DType.F32, 4, 6);
                Map<String, Runnable> bad = new java.util.LinkedHashMap<>();
                bad.put("in host memory", () -> c.allToAll(host, b));
                bad.put("must be contiguous", () -> c.allToAll(strided, b));
                bad.put("is on device 3", () -> c.allToAll(otherDevice, b));
                bad.put("equal dtype and size", () -> c.allToAll(a, bf));
                bad.put("do not split into 2", () -> c.allToAll(odd, odd2));
                bad.put("overlaps", () -> c.allToAll(a, a));
                bad.put("recv of 2 x send's elements", () -> c.allGather(a, b));
                bad.put("must be ranks in [0, 2)", () -> c.sendRecv(List.of(a), 2, List.of(b), 0));
                bad.put("overlaps send", () -> c.sendRecv(List.of(a), 1, List.of(a.slice(0, 0, 2)), 1));
                bad.put("tensor is null", () -> c.allGather(null, b));
                bad.put("color must be non-negative", () -> c.split(-1, 0));
                for (Map.Entry<String, Runnable> e : bad.entrySet()) {
                    IllegalArgumentException ex = assertThrows(IllegalArgumentException.class, e.getValue()::run, e.getKey());
                    assertTrue(ex.getMessage().contains(e.getKey()), ex.getMessage());
                }
            }
            List<String> calls = worldEndpoint(nccl, 0).calls;
            assertTrue(calls.isEmpty(), "no NCCL call was made: " + calls);
            assertEquals(0, c.traffic().totalBytesSent());
            return null;
        }));
    }

    @Test
    void afterCloseEveryCallThrowsAndEverythingIsFreedOnce() throws Exception {
        FakeNccl nccl = new FakeNccl(2, false);
        FakeRanks.values(FakeRanks.run(nccl, 2, TIMEOUT, true, r -> {
            Communicator child = r.world().split(0, -r.rank()); // keys reverse the order
            assertEquals(1 - r.rank(), child.rank());
            r.world().barrier();
            r.world().close(); // closes the child too
            r.world().close();
            child.close();
            try (Arena arena = Arena.ofShared()) {
                Tensor a = HostDeviceBackend.deviceTensor(DType.F32, 2);
                assertThrows(IllegalStateException.class, () -> r.world().allGather(a, a));
                assertThrows(IllegalStateException.class, () -> child.allToAll(a, a));
                assertThrows(IllegalStateException.class, () -> r.world().barrier());
            }
            return null;
        }));
        assertTrue(nccl.live().isEmpty());
        assertEquals(4, nccl.endpoints().size());
        for (FakeNccl.Endpoint e : nccl.endpoints()) {
            assertEquals(List.of("destroy"), e.calls.stream().filter(c -> c.equals("destroy") || c.equals("abort")).toList());
        }
    }

    @Test
    void aWorldOfOneNeedsNoToken() throws Exception {
        FakeNccl nccl = new FakeNccl(1, false);
        try (Rendezvous rdzv = Rendezvous.join(LaunchEnvironment.single());
             FakeStream compute = FakeStream.inline("compute"); FakeStream comm = FakeStream.queued("comm");
             NcclGroupCommunicator world = NcclGroupCommunicator.createWorld(rdzv, nccl.factory(0), 0, compute, comm,
                     null, f -> { })) {
            assertEquals(1, world.size());
            world.barrier();
            try (Communicator self = world.split(0, 0)) {
                assertEquals(1, self.size());
            }
        }
        assertTrue(nccl.live().isEmpty());
    }

    static FakeNccl.Endpoint worldEndpoint(FakeNccl nccl, int rank) {
        return nccl.endpoints().stream().filter(e -> e.comm == 0 && e.rank == rank).findFirst().orElseThrow();
    }

    static float[] toArray(Tensor deviceTensor) {
        Tensor h = HostDeviceBackend.host(deviceTensor);
        float[] out = new float[(int) h.numel()];
        long[] shape = h.shape();
        long[] index = new long[shape.length];
        for (int i = 0; i < out.length; i++) {
            long rem = i;
            for (int d = shape.length - 1; d >= 0; d--) {
                index[d] = rem % shape[d];
                rem /= shape[d];
            }
            out[i] = h.get(index);
        }
        return out;
    }

    private static void backendCopy(Tensor src, Tensor dst) {
        org.usp4j.tensor.HostTensors.copy(HostDeviceBackend.host(src), HostDeviceBackend.host(dst));
    }

    static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
