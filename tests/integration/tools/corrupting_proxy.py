#!/usr/bin/env python3
"""An HTTP forwarder between the cache and a real registry that misbehaves on purpose.

Every request is forwarded to --upstream as is (method, path, query, headers such as Range and
Authorization); the answer comes back with its status and headers. Only the body of answers
whose path matches --match (default: blob paths) is changed, as the flags ask:

  --corrupt              flip one byte (at --corrupt-offset, default the middle of the body)
  --delay-per-chunk S    sleep S seconds after each --chunk-size bytes (a slow upstream)
  --hold-after N         send N body bytes, then stop sending until --release-file exists;
                         logs `hold: ... holding at N` when it stops, `hold: ... released` after

  --manifest-header "Name: value"   add this header to every manifest answer (repeatable), e.g.
                                    Docker Hub's `ratelimit-remaining: 76;w=21600`

The hold is what lets a test catch a download in flight without guessing how long it takes.

Each answered request is logged on stderr:
  forward: GET /v2/x/blobs/sha256:... range=- -> 200 sent=123 corrupted=1
"""

import argparse
import http.client
import http.server
import os
import re
import sys
import threading
import time
import urllib.parse

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
              "trailers", "transfer-encoding", "upgrade", "host", "content-length"}


def log(line):
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


class Forwarder(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # noqa: N802 - stdlib name
        pass

    def do_GET(self):  # noqa: N802
        self.forward()

    def do_HEAD(self):  # noqa: N802
        self.forward()

    def do_POST(self):  # noqa: N802
        self.forward()

    def do_PUT(self):  # noqa: N802
        self.forward()

    def do_PATCH(self):  # noqa: N802
        self.forward()

    def do_DELETE(self):  # noqa: N802
        self.forward()

    def forward(self):
        opts = self.server.opts
        length = int(self.headers.get("Content-Length") or 0)
        request_body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Host"] = opts.upstream_netloc

        conn = http.client.HTTPConnection(opts.upstream_host, opts.upstream_port, timeout=300)
        try:
            conn.request(self.command, self.path, body=request_body, headers=headers)
            resp = conn.getresponse()
        except OSError as err:
            body = f'{{"errors":[{{"code":"UNAVAILABLE","message":"forwarder: {err}"}}]}}'
            self.send_response(502)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())
            log(f"forward: {self.command} {self.path} -> 502 upstream error {err}")
            return

        path_only = urllib.parse.urlsplit(self.path).path
        special = self.command == "GET" and opts.match.search(path_only) is not None
        declared = resp.getheader("Content-Length")
        body = None
        if declared is None and self.command != "HEAD":
            # Chunked upstream answer: read it whole so we can send a Content-Length.
            body = resp.read()
            declared = str(len(body))

        self.send_response(resp.status, resp.reason)
        for key, value in resp.getheaders():
            if key.lower() not in HOP_BY_HOP:
                self.send_header(key, value)
        if declared is not None:
            self.send_header("Content-Length", declared)
        if "/manifests/" in path_only:
            for extra in opts.manifest_header:
                name, _, value = extra.partition(":")
                self.send_header(name.strip(), value.strip())
        self.end_headers()

        sent = 0
        corrupted = 0
        total = int(declared or 0)
        flip_at = opts.corrupt_offset if opts.corrupt_offset >= 0 else total // 2
        try:
            if self.command != "HEAD":
                while True:
                    if body is not None:
                        chunk, body = body[: opts.chunk_size], body[opts.chunk_size:]
                    else:
                        chunk = resp.read(opts.chunk_size)
                    if not chunk:
                        break
                    if special and opts.corrupt and sent <= flip_at < sent + len(chunk):
                        i = flip_at - sent
                        chunk = chunk[:i] + bytes([chunk[i] ^ 0xFF]) + chunk[i + 1:]
                        corrupted = 1
                    if special and opts.hold_after >= 0 and sent + len(chunk) > opts.hold_after:
                        head = max(0, opts.hold_after - sent)
                        if head:
                            self.wfile.write(chunk[:head])
                            sent += head
                            chunk = chunk[head:]
                        self.hold()
                    self.wfile.write(chunk)
                    sent += len(chunk)
                    if special and opts.delay_per_chunk > 0:
                        time.sleep(opts.delay_per_chunk)
        except (BrokenPipeError, ConnectionResetError) as err:
            log(f"forward: {self.command} {self.path} client went away after {sent}: {err}")
            self.close_connection = True
            return
        finally:
            conn.close()
        log(f"forward: {self.command} {self.path} range={self.headers.get('Range', '-')} "
            f"-> {resp.status} sent={sent} corrupted={corrupted}")

    def hold(self):
        opts = self.server.opts
        if opts.release_file and os.path.exists(opts.release_file):
            return
        self.wfile.flush()
        log(f"hold: {self.command} {self.path} holding at {opts.hold_after}")
        while not (opts.release_file and os.path.exists(opts.release_file)):
            time.sleep(0.05)
        log(f"hold: {self.command} {self.path} released")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="http://host:port of the registry")
    parser.add_argument("--match", default=r"/blobs/sha256:[0-9a-f]{64}$",
                        help="regex on the path of GET answers whose body is changed")
    parser.add_argument("--corrupt", action="store_true")
    parser.add_argument("--corrupt-offset", type=int, default=-1)
    parser.add_argument("--chunk-size", type=int, default=64 * 1024)
    parser.add_argument("--delay-per-chunk", type=float, default=0.0)
    parser.add_argument("--hold-after", type=int, default=-1)
    parser.add_argument("--release-file", default="")
    parser.add_argument("--manifest-header", action="append", default=[])
    opts = parser.parse_args()

    upstream = urllib.parse.urlsplit(opts.upstream)
    opts.upstream_host = upstream.hostname
    opts.upstream_port = upstream.port or 80
    opts.upstream_netloc = upstream.netloc
    opts.match = re.compile(opts.match)
    if opts.hold_after >= 0 and not opts.release_file:
        parser.error("--hold-after needs --release-file")

    server = http.server.ThreadingHTTPServer((opts.addr, opts.port), Forwarder)
    server.daemon_threads = True
    server.opts = opts
    log(f"forward: listening on {opts.addr}:{opts.port} -> {opts.upstream}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
