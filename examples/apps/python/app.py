"""An order service in Python (psycopg2, a small connection pool), rehearsed as a user's own app.

It knows nothing about cutover-lab: it reads the libpq variables (PGHOST, PGPORT, PGUSER,
PGPASSWORD, PGDATABASE) like any libpq program, listens on 127.0.0.1:$PORT and answers
  POST /orders {"ref": "..."}  -> 201 {"id": <order id>} once the INSERT committed
  GET  /health                 -> 200
A connection that fails is thrown away and the request answered 503; the next request opens a
fresh connection, resolving PGHOST again through the system resolver (libc, no cache).
"""
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import psycopg2
import psycopg2.pool

POOL = psycopg2.pool.ThreadedConnectionPool(0, int(os.environ.get("POOL_SIZE", "8")), connect_timeout=2)
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # keep the run's log readable: errors only
        pass

    def reply(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/health":
            return self.reply(200, {"ok": True})
        return self.reply(404, {"error": "not found"})

    def do_POST(self):
        if self.path != "/orders":
            return self.reply(404, {"error": "not found"})
        body = json.loads(self.rfile.read(int(self.headers.get("content-length", "0"))) or b"{}")
        conn = None
        try:
            conn = POOL.getconn()
            with conn:
                with conn.cursor() as cur:
                    cur.execute("insert into orders (ref, amount_cents) values (%s, %s) returning id", (body.get("ref"), body.get("amount_cents", 100)))
                    order_id = cur.fetchone()[0]
            POOL.putconn(conn)
            return self.reply(201, {"id": order_id})
        except psycopg2.Error as e:
            if conn is not None:
                POOL.putconn(conn, close=True)
            print(f"order failed: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}", flush=True)
            return self.reply(503, {"error": "database unavailable"})


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), Handler)
    server.daemon_threads = True
    print(f"orders app listening on 127.0.0.1:{os.environ['PORT']}", flush=True)
    server.serve_forever()
