// Server.java: the zoo protocol (zoo.h) from a thread pool, on a JVM (its threads are
// pthreads with the JVM's own guard zones; its collector moves objects while captured).
import java.io.*;
import java.net.*;
import java.util.concurrent.*;

public class Server {
    static long sum(long n) {
        long[] v = new long[(int) (n * 100)];
        for (int i = 0; i < v.length; i++) v[i] = ((long) i * i) % 7919;
        long s = 0;
        for (long x : v) s += x;
        return s;
    }

    public static void main(String[] args) throws Exception {
        long pid = ProcessHandle.current().pid();
        ServerSocket l = new ServerSocket(0, 128, InetAddress.getLoopbackAddress());
        System.out.println("pid " + pid);
        System.out.println("port " + l.getLocalPort());
        System.out.println("ready");
        System.out.flush();
        ExecutorService pool = Executors.newFixedThreadPool(8);
        Thread stdin = new Thread(() -> {
            try {
                BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
                String line;
                while ((line = in.readLine()) != null && !line.equals("exit")) {}
            } catch (IOException e) {}
            System.exit(0);
        });
        stdin.setDaemon(true);
        stdin.start();
        for (;;) {
            Socket c = l.accept();
            pool.submit(() -> {
                try (c) {
                    BufferedReader r = new BufferedReader(new InputStreamReader(c.getInputStream()));
                    Writer w = new OutputStreamWriter(c.getOutputStream());
                    String line;
                    while ((line = r.readLine()) != null) {
                        w.write(pid + " " + sum(Long.parseLong(line.trim())) + "\n");
                        w.flush();
                    }
                } catch (IOException e) {}
                return null;
            });
        }
    }
}
