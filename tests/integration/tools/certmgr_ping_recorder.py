#!/usr/bin/env python3
"""A stand-in for healthchecks.io: records every ping and answers like hc-ping.com.

Each request is appended as one JSON line to --out: {"method", "path", "query", "body"}.
Answers 200 "OK" with a Ping-Body-Limit header (--body-limit). GET /healthz answers 200 without
being recorded (readiness probe).
"""

import argparse
import http.server
import json
import threading


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--body-limit", type=int, default=100000)
    args = parser.parse_args()
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def handle_ping(self):
            path, _, query = self.path.partition("?")
            if path == "/healthz":
                self.answer(200)
                return
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
            with lock, open(args.out, "a", encoding="utf-8") as out:
                out.write(json.dumps({"method": self.command, "path": path, "query": query,
                                      "body": body}) + "\n")
            self.answer(200)

        def answer(self, status):
            body = b"OK"
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Ping-Body-Limit", str(args.body_limit))
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        do_GET = do_POST = do_HEAD = handle_ping

        def log_message(self, fmt, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
