package org.usp4j.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.IntConsumer;

/**
 * Runs work items 0 .. n-1 on a pool: one task per pool thread, each taking the next item from a shared
 * counter, so uneven items (causal blocks) balance themselves. Callers order items largest first. The
 * caller waits; when it is itself a thread of the pool it helps instead of blocking. A null pool runs
 * every item on the calling thread.
 */
final class WorkItems {

    private WorkItems() {
    }

    static void run(ForkJoinPool pool, int items, IntConsumer work) {
        int workers = pool == null ? 1 : Math.min(items, pool.getParallelism());
        if (workers <= 1) {
            for (int i = 0; i < items; i++) {
                work.accept(i);
            }
            return;
        }
        AtomicInteger next = new AtomicInteger();
        AtomicReference<Throwable> failure = new AtomicReference<>();
        ForkJoinTask<?>[] tasks = new ForkJoinTask<?>[workers];
        for (int t = 0; t < workers; t++) {
            tasks[t] = ForkJoinTask.adapt(() -> {
                try {
                    for (int i = next.getAndIncrement(); i < items; i = next.getAndIncrement()) {
                        work.accept(i);
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                    next.set(items); // the other workers stop at their next item
                }
            });
        }
        if (ForkJoinTask.getPool() == pool) {
            ForkJoinTask.invokeAll(tasks);
        } else {
            for (ForkJoinTask<?> task : tasks) {
                pool.execute(task);
            }
            for (ForkJoinTask<?> task : tasks) {
                task.join();
            }
        }
        Throwable e = failure.get();
        if (e instanceof RuntimeException re) {
            throw re;
        }
        if (e instanceof Error err) {
            throw err;
        }
        if (e != null) {
            throw new IllegalStateException(e);
        }
    }
}
