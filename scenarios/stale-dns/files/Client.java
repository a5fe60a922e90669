// A JVM client for the stale-DNS scenarios: requests URL every INTERVAL_MS, at most COUNT times,
// and prints one line per request: the body the target answered ("blue", "green") or
// "error <exception>: <message>".
//
// Usage: java -cp DIR Client MODE URL COUNT INTERVAL_MS
//   MODE "new":        HttpURLConnection with keep-alive off: a new TCP connection, and so a name
//                      look-up through InetAddress (and its cache), for every request.
//   MODE "keepalive":  HttpURLConnection as it comes (http.keepAlive=true): the JDK's keep-alive
//                      cache, keyed by the URL's host name and port, hands the same connection to
//                      every request while the server keeps it open and it is never idle for 5 s.
//   MODE "httpclient": one java.net.http.HttpClient (HTTP/1.1) for the whole run. Its pool is
//                      keyed by the *resolved* address: every request resolves the name again
//                      (through the InetAddress cache) and picks a pooled connection to that address.
// Timeouts (connect 3 s, response 5 s) are generous on purpose: they only bound a request that
// hangs, and a JVM starved of CPU while many trials start at once must not report a slow first
// request as an error. A stopped target is refused at once. -Dclient.timeout.ms=N sets both (a
// trial at a large time scale: at 100x a 5 s timeout is 50 ms of wall time, within the
// machine's own latency).
// The program itself caches no name: whatever stays stale is the JDK's doing. On start it prints
// the effective cache settings (as the JVM reads them) on stderr.
import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URI;
import java.net.URL;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;
import java.security.Security;
import java.time.Duration;

public class Client {
    static final int CONNECT_MS = Integer.getInteger("client.timeout.ms", 3000);
    static final int READ_MS = Integer.getInteger("client.timeout.ms", 5000);

    @SuppressWarnings("removal") // getSecurityManager: the security manager is one of the cases
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: Client new|keepalive|httpclient URL COUNT INTERVAL_MS");
            System.exit(2);
        }
        String mode = args[0];
        String url = args[1];
        int count = Integer.parseInt(args[2]);
        long interval = Long.parseLong(args[3]);
        System.err.println("client: mode=" + mode
                + " security.networkaddress.cache.ttl=" + Security.getProperty("networkaddress.cache.ttl")
                + " sun.net.inetaddr.ttl=" + System.getProperty("sun.net.inetaddr.ttl")
                + " security manager=" + (System.getSecurityManager() != null));
        HttpClient httpClient = null;
        if (mode.equals("new")) {
            System.setProperty("http.keepAlive", "false");
        } else if (mode.equals("keepalive")) {
            System.setProperty("http.keepAlive", "true");
        } else if (mode.equals("httpclient")) {
            httpClient = HttpClient.newBuilder()
                    .version(HttpClient.Version.HTTP_1_1)
                    .connectTimeout(Duration.ofMillis(CONNECT_MS))
                    .build();
        } else {
            System.err.println("unknown mode " + mode);
            System.exit(2);
        }
        for (int i = 0; i < count; i++) {
            long start = System.nanoTime();
            String line;
            try {
                line = httpClient != null ? viaHttpClient(httpClient, url) : viaUrlConnection(url, mode.equals("new"));
            } catch (Exception e) {
                Throwable t = e;
                while (t.getMessage() == null && t.getCause() != null) {
                    t = t.getCause();
                }
                line = "error " + t.getClass().getSimpleName()
                        + (t.getMessage() == null ? "" : ": " + t.getMessage().replace('\n', ' '));
            }
            System.out.println(line);
            System.out.flush();
            long left = interval - (System.nanoTime() - start) / 1_000_000;
            if (left > 0) {
                Thread.sleep(left);
            }
        }
    }

    static String viaUrlConnection(String url, boolean close) throws Exception {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        c.setConnectTimeout(CONNECT_MS);
        c.setReadTimeout(READ_MS);
        if (close) {
            c.setRequestProperty("Connection", "close");
        }
        try (InputStream in = c.getInputStream()) {
            // Read to the end and close the stream (not the connection): with keep-alive on, that
            // returns the connection to the JDK's keep-alive cache.
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
        } finally {
            if (close) {
                c.disconnect();
            }
        }
    }

    static String viaHttpClient(HttpClient client, String url) throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofMillis(READ_MS)).GET().build();
        return client.send(req, HttpResponse.BodyHandlers.ofString()).body().trim();
    }
}
