import java.io.InputStream;
import java.net.HttpURLConnection;
import java.net.URL;

/** One GET with HttpURLConnection and a connect timeout (ms), as JVM services make them. */
public class Fetch {
    public static void main(String[] args) throws Exception {
        HttpURLConnection c = (HttpURLConnection) new URL(args[0]).openConnection();
        c.setConnectTimeout(Integer.parseInt(args[1]));
        try (InputStream in = c.getInputStream()) {
            System.out.println("answer " + new String(in.readAllBytes()).trim());
        } catch (java.io.IOException e) {
            System.out.println("error " + e);
            System.exit(1);
        }
    }
}
