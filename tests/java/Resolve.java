import java.net.InetAddress;

/** Prints every address the JVM resolves for each name given, one per line. */
public class Resolve {
    public static void main(String[] args) throws Exception {
        for (String name : args) {
            for (InetAddress a : InetAddress.getAllByName(name)) {
                System.out.println(name + " " + a.getHostAddress());
            }
        }
    }
}
