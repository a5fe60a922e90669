import java.net.InetAddress;
import java.security.Security;
import java.util.concurrent.Executors;
import java.util.concurrent.ScheduledExecutorService;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.locks.LockSupport;

/**
 * Reports its own clocks around timed waits and around the expiry of its address cache, for the
 * time-warp tests: every line is "EVENT nano=<System.nanoTime()> milli=<currentTimeMillis()>".
 *
 * waits: a lookup of start.example.test, before/after Thread.sleep(2000), Object.wait(2000), LockSupport.parkNanos(2 s) and a
 * ScheduledExecutorService task 2 s out, a lookup of end.example.test.
 * rate N: times N calls of System.nanoTime() (in program time).
 * cache NAME OLD: with networkaddress.cache.ttl=30, resolves NAME every 100 ms and reports the
 * first lookup (bracketed: before/after) and the first lookup that no longer returns OLD
 * (bracketed, with the bracket of the last one that still did).
 */
public class WarpWaits {
    static void report(String event) {
        System.out.println(event + " nano=" + System.nanoTime() + " milli=" + System.currentTimeMillis());
        System.out.flush();
    }

    /** A lookup of NAME.example.test, bracketed by reports: the lab server's log stamps its query. */
    static void lookup(String name) throws Exception {
        report(name + "-lookup-before");
        InetAddress.getByName(name + ".example.test");
        report(name + "-lookup-after");
    }

    public static void main(String[] args) throws Exception {
        if (args[0].equals("waits")) {
            lookup("start");
            report("sleep-before");
            Thread.sleep(2000);
            report("sleep-after");
            Object lock = new Object();
            report("wait-before");
            synchronized (lock) {
                lock.wait(2000);
            }
            report("wait-after");
            report("park-before");
            LockSupport.parkNanos(2_000_000_000L);
            report("park-after");
            ScheduledExecutorService ses = Executors.newSingleThreadScheduledExecutor();
            report("schedule-before");
            ses.schedule(() -> 1, 2, TimeUnit.SECONDS).get();
            report("schedule-after");
            ses.shutdown();
            lookup("end");
            return;
        }
        if (args[0].equals("rate")) {
            int n = Integer.parseInt(args[1]);
            long sink = 0, t0 = System.nanoTime();
            for (int i = 0; i < n; i++) sink += System.nanoTime();
            long t1 = System.nanoTime();
            System.out.println("rate calls=" + n + " program_ns=" + (t1 - t0) + " sink=" + (sink & 1));
            return;
        }
        Security.setProperty("networkaddress.cache.ttl", "30");
        String name = args[1], old = args[2];
        long lastBefore = 0, lastAfter = 0;
        for (int i = 0; ; i++) {
            long before = System.nanoTime();
            String got = InetAddress.getByName(name).getHostAddress();
            long after = System.nanoTime();
            if (i == 0) {
                System.out.println("first " + got + " before=" + before + " after=" + after);
                System.out.flush();
            } else if (!got.equals(old)) {
                System.out.println("changed " + got + " before=" + before + " after=" + after + " last-old-before=" + lastBefore + " last-old-after=" + lastAfter);
                System.out.flush();
                return;
            }
            lastBefore = before;
            lastAfter = after;
            Thread.sleep(100);
        }
    }
}
