// A JVM client for the stale-DNS scenarios: requests URL every INTERVAL_MS, at most COUNT times,
// and prints one line per request: the body the target answered ("blue", "green") or
// "error <exception>: <message>".
//
// Usage: java -cp DIR Client MODE URL COUNT INTERVAL_MS
//   MODE "new":    HttpURLConnection with keep-alive off: a new TCP connection, and so a name
//                  look-up through InetAddress (and its cache), for every request.
//   MODE "pooled": one java.net.http.HttpClient for the whole run: its keep-alive pool reuses a
//                  connection for as long as the server keeps it open.
// The program itself caches no name: whatever stays stale is the JVM's doing. On start it prints
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
    @SuppressWarnings("removal") // getSecurityManager: the security manager is one of the cases
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: Client new|pooled URL COUNT INTERVAL_MS");
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
        HttpClient pooled = null;
        if (mode.equals("new")) {
            System.setProperty("http.keepAlive", "false");
        } else if (mode.equals("pooled")) {
            pooled = HttpClient.newBuilder()
                    .version(HttpClient.Version.HTTP_1_1)
                    .connectTimeout(Duration.ofSeconds(1))
                    .build();
        } else {
            System.err.println("unknown mode " + mode);
            System.exit(2);
        }
        for (int i = 0; i < count; i++) {
            long start = System.nanoTime();
            String line;
            try {
                line = pooled != null ? viaPool(pooled, url) : viaNewConnection(url);
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

    static String viaNewConnection(String url) throws Exception {
        HttpURLConnection c = (HttpURLConnection) new URL(url).openConnection();
        c.setConnectTimeout(1000);
        c.setReadTimeout(1000);
        c.setRequestProperty("Connection", "close");
        try (InputStream in = c.getInputStream()) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8).trim();
        } finally {
            c.disconnect();
        }
    }

    static String viaPool(HttpClient client, String url) throws Exception {
        HttpRequest req = HttpRequest.newBuilder(URI.create(url)).timeout(Duration.ofSeconds(1)).GET().build();
        return client.send(req, HttpResponse.BodyHandlers.ofString()).body().trim();
    }
}
