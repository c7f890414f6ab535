/* A small real JVM program that crashes (the crash assembler's oracle, issue 11).
 *
 *   java -cp CLASSES com.example.shop.Crash SCENARIO EVENT.json
 *
 * The JVM has no SDK in Debian; the oracle is the exception itself. Before the exception
 * leaves main, the program writes what a Sentry SDK reads from it to EVENT.json: the
 * getCause() chain (root cause first, as Sentry orders exception.values), each with its
 * own full getStackTrace() (oldest call first) and its getSuppressed(). Then the JVM's
 * default uncaught handler prints it on stderr ("Exception in thread ...", "\tat",
 * "Caused by:", "... N more", "Suppressed:"), exactly as a dyno prints it. */
package com.example.shop;

import java.io.FileWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

public final class Crash {
    static final Map<String, Integer> PRICES = new HashMap<>();

    static int price(String item) {
        Integer p = PRICES.get(item);
        return p.intValue();
    }

    static int total(List<String> items) {
        int[] sum = {0};
        items.forEach(i -> sum[0] += price(i));
        return sum[0];
    }

    static int checkout(List<String> items) {
        try {
            return total(items);
        } catch (NullPointerException e) {
            throw new IllegalStateException("cannot price cart " + items, e);
        }
    }

    static void submit(List<String> items) {
        try {
            checkout(items);
        } catch (IllegalStateException e) {
            throw new RuntimeException("order rejected", e);
        }
    }

    static final class Connection implements AutoCloseable {
        @Override
        public void close() throws IOException {
            throw new IOException("connection reset while closing");
        }
    }

    static void save() throws Exception {
        try (Connection c = new Connection()) {
            throw new IllegalArgumentException("order id must be positive");
        }
    }

    static final class Refunds {
        int pending() {
            throw new UnsupportedOperationException();
        }
    }

    static void refundInWorker(String path) throws InterruptedException {
        Thread t = new Thread(() -> {
            try {
                new Refunds().pending();
            } catch (RuntimeException e) {
                try {
                    write(e, path);
                } catch (IOException io) {
                    throw new UncheckedIOException(io);
                }
                throw e;
            }
        }, "refund-worker-1");
        t.start();
        t.join();
    }

    /* A web framework's error log (Spring Boot's default console pattern), then the
     * exception as Throwable.printStackTrace prints it, and the server carries on. */
    static void logged(String path) throws IOException {
        try {
            submit(List.of("apple", "quince"));
        } catch (RuntimeException e) {
            write(e, path);
            System.err.println("2026-12-07T03:40:00.123Z ERROR 4 --- [nio-8080-exec-1] "
                    + "o.a.c.c.C.[.[.[/].[dispatcherServlet]    : Servlet.service() for servlet "
                    + "[dispatcherServlet] threw exception");
            e.printStackTrace();
        }
        System.err.println("2026-12-07T03:40:00.200Z  INFO 4 --- [nio-8080-exec-2] "
                + "c.e.shop.OrderController                 : GET /health");
    }

    static int depth(Map<String, String> parents, String name) {
        return depth(parents, parents.get(name)) + 1;
    }

    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char ch : s.toCharArray()) {
            if (ch == '"' || ch == '\\') b.append('\\').append(ch);
            else if (ch == '\n') b.append("\\n");
            else if (ch == '\t') b.append("\\t");
            else if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
            else b.append(ch);
        }
        return b.append('"').toString();
    }

    static String exc(Throwable t) {
        StringBuilder b = new StringBuilder();
        b.append("{\"type\":").append(q(t.getClass().getName()));
        b.append(",\"value\":").append(q(t.getMessage()));
        b.append(",\"frames\":[");
        StackTraceElement[] st = t.getStackTrace();
        for (int i = st.length - 1; i >= 0; i--) {
            StackTraceElement e = st[i];
            b.append("{\"module\":").append(q(e.getClassName()));
            b.append(",\"function\":").append(q(e.getMethodName()));
            b.append(",\"filename\":").append(q(e.getFileName()));
            b.append(",\"lineno\":").append(e.getLineNumber());
            b.append(",\"in_app\":").append(e.getClassName().startsWith("com.example."));
            b.append(i > 0 ? "}," : "}");
        }
        b.append("],\"suppressed\":[");
        Throwable[] sup = t.getSuppressed();
        for (int i = 0; i < sup.length; i++) {
            b.append(exc(sup[i])).append(i + 1 < sup.length ? "," : "");
        }
        return b.append("]}").toString();
    }

    static void write(Throwable t, String path) throws IOException {
        List<Throwable> chain = new ArrayList<>();
        for (Throwable c = t; c != null && !chain.contains(c); c = c.getCause()) {
            chain.add(0, c);
        }
        StringBuilder b = new StringBuilder("{\"exception\":{\"values\":[");
        for (int i = 0; i < chain.size(); i++) {
            b.append(exc(chain.get(i))).append(i + 1 < chain.size() ? "," : "");
        }
        try (FileWriter w = new FileWriter(path, true)) {
            w.write(b.append("]}}\n").toString());
        }
    }

    static void run(String scenario, String path) throws Exception {
        switch (scenario) {
            case "thread": refundInWorker(path); break;
            case "logged": logged(path); break;
            case "burst": logged(path); logged(path); break;
            case "overflow": depth(Map.of("fruit", "food", "food", "fruit"), "fruit"); break;
            case "multiline": throw new IllegalStateException("invalid order:\n  kiwi: no price\n  lime: no price");
            case "nested": total(List.of("apple", "kiwi")); break;
            case "caused_by": submit(List.of("pear", "plum")); break;
            case "suppressed": save(); break;
            default: throw new Error("unknown scenario " + scenario);
        }
    }

    public static void main(String[] args) throws Exception {
        PRICES.put("apple", 3);
        PRICES.put("pear", 4);
        try {
            run(args[0], args[1]);
        } catch (Exception | StackOverflowError e) {
            write(e, args[1]);
            throw e;
        }
    }
}
