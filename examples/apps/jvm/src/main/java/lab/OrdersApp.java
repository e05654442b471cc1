package lab;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import com.zaxxer.hikari.HikariConfig;
import com.zaxxer.hikari.HikariDataSource;

import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.concurrent.Executors;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * An order service on the JVM that knows nothing about cutover-lab: PgJDBC behind a HikariCP pool,
 * configured from the libpq variables, listening on 127.0.0.1:$PORT.
 *   POST /orders {"ref": "..."} -> 201 {"id": n} once the INSERT committed; 503 when the database failed
 *   GET  /health                -> 200
 * Its defaults are the JVM's: InetAddress caches a resolved name for 30 s (networkaddress.cache.ttl)
 * whatever the DNS record's TTL says, which is exactly what a rehearsal of a DNS switch should show.
 */
public final class OrdersApp {
  private static final Pattern REF = Pattern.compile("\"ref\"\\s*:\\s*\"([^\"]*)\"");

  public static void main(String[] args) throws IOException {
    String url = "jdbc:postgresql://" + System.getenv("PGHOST") + ":" + System.getenv("PGPORT") + "/" + System.getenv("PGDATABASE");
    HikariConfig cfg = new HikariConfig();
    cfg.setJdbcUrl(url);
    cfg.setUsername(System.getenv("PGUSER"));
    cfg.setPassword(System.getenv("PGPASSWORD"));
    cfg.setMaximumPoolSize(Integer.parseInt(System.getenv().getOrDefault("POOL_SIZE", "8")));
    cfg.setMinimumIdle(2);
    cfg.setConnectionTimeout(2000);
    cfg.setValidationTimeout(1000);
    cfg.setInitializationFailTimeout(-1);
    cfg.addDataSourceProperty("connectTimeout", "2");
    cfg.addDataSourceProperty("socketTimeout", "5");
    HikariDataSource ds = new HikariDataSource(cfg);

    HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", Integer.parseInt(System.getenv("PORT"))), 256);
    server.setExecutor(Executors.newFixedThreadPool(32));
    server.createContext("/health", ex -> reply(ex, 200, "{\"ok\":true}"));
    server.createContext("/orders", ex -> {
      if (!"POST".equals(ex.getRequestMethod())) { reply(ex, 405, "{}"); return; }
      String body = new String(ex.getRequestBody().readAllBytes(), StandardCharsets.UTF_8);
      Matcher m = REF.matcher(body);
      String ref = m.find() ? m.group(1) : "";
      try (Connection c = ds.getConnection(); PreparedStatement ps = c.prepareStatement("insert into orders (ref, amount_cents) values (?, 100) returning id")) {
        ps.setString(1, ref);
        try (ResultSet rs = ps.executeQuery()) {
          rs.next();
          reply(ex, 201, "{\"id\":" + rs.getLong(1) + "}");
        }
      } catch (SQLException e) {
        System.out.println("order failed: " + e.getSQLState() + " " + String.valueOf(e.getMessage()).split("\n")[0]);
        reply(ex, 503, "{\"error\":\"database unavailable\"}");
      }
    });
    server.start();
    System.out.println("orders-jvm listening on 127.0.0.1:" + System.getenv("PORT"));
  }

  private static void reply(HttpExchange ex, int code, String json) throws IOException {
    byte[] b = json.getBytes(StandardCharsets.UTF_8);
    ex.getResponseHeaders().set("content-type", "application/json");
    ex.sendResponseHeaders(code, b.length);
    try (OutputStream os = ex.getResponseBody()) { os.write(b); }
  }
}
