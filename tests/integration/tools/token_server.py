#!/usr/bin/env python3
"""A Docker registry token server for tests (the auth flow of Docker Hub, ghcr.io, quay.io).

GET /token?service=S&scope=repository:NAME:pull,push&scope=... answers
{"token": JWT, "access_token": JWT, "expires_in": N, "issued_at": ISO8601}.

Policy: anyone (no credentials) gets pull on any repository; "push" (and "*", "delete") is
granted only to a client presenting the right Basic credentials. Wrong credentials get 401, as
Docker Hub does, so a client cannot silently fall back to anonymous.

Tokens are RS256 JWTs signed with the openssl CLI. Their header carries x5c with the signing
certificate, which the registry verifies against its auth.token.rootcertbundle.

GET /healthz answers 200 (readiness probe). Every request is logged on stderr as
`token: GET /token?... -> 200 account=... granted=...`.
"""

import argparse
import base64
import datetime
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.parse


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def cert_der_b64(cert_path: str) -> str:
    pem = open(cert_path, encoding="ascii").read()
    body = pem.split("-----BEGIN CERTIFICATE-----")[1].split("-----END CERTIFICATE-----")[0]
    return "".join(body.split())


def sign_rs256(key_path: str, data: bytes) -> bytes:
    # PKCS#1 v1.5 over SHA-256 is exactly what `openssl dgst -sha256 -sign` produces.
    result = subprocess.run(
        ["openssl", "dgst", "-sha256", "-sign", key_path],
        input=data,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        check=True,
    )
    return result.stdout


def parse_scope(scope: str):
    # repository:library/x:pull,push -> ("repository", "library/x", ["pull", "push"]).
    # The name may contain a registry host with a port, so split from the right.
    parts = scope.split(":")
    if len(parts) < 3:
        return None
    kind, actions = parts[0], parts[-1]
    name = ":".join(parts[1:-1])
    return kind, name, [a for a in actions.split(",") if a]


class TokenHandler(http.server.BaseHTTPRequestHandler):
    server_version = "dcp-token-server/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # noqa: N802 - stdlib name
        pass

    def log_line(self, status, extra=""):
        sys.stderr.write(f"token: {self.command} {self.path} -> {status} {extra}\n")
        sys.stderr.flush()

    def reply(self, status, body: dict, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def authenticated_account(self):
        """None for anonymous, the user name for good credentials, False for bad ones."""
        header = self.headers.get("Authorization")
        if not header:
            return None
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(value).decode().partition(":")
        except Exception:  # noqa: BLE001 - any garbage is just bad credentials
            return False
        if self.server.users.get(user) == password:
            return user
        return False

    def do_GET(self):  # noqa: N802 - stdlib name
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/healthz":
            self.reply(200, {"ok": True})
            self.log_line(200)
            return
        if url.path != "/token":
            self.reply(404, {"error": "not found"})
            self.log_line(404)
            return

        query = urllib.parse.parse_qs(url.query)
        service = query.get("service", [""])[0]
        if service != self.server.service:
            self.reply(400, {"error": f"unknown service {service!r}"})
            self.log_line(400, "bad service")
            return
        account = self.authenticated_account()
        if account is False:
            self.reply(
                401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "incorrect username or password"}]},
                {"WWW-Authenticate": 'Basic realm="dcp-token-server"'},
            )
            self.log_line(401, "bad credentials")
            return

        access = []
        for scope_param in query.get("scope", []):
            # Several scopes may also arrive space-separated in one parameter.
            for scope in scope_param.split(" "):
                parsed = parse_scope(scope)
                if parsed is None:
                    continue
                kind, name, actions = parsed
                if account:
                    granted = actions
                else:
                    granted = [a for a in actions if a == "pull"]
                access.append({"type": kind, "name": name, "actions": granted})

        now = int(time.time())
        claims = {
            "iss": self.server.issuer,
            "sub": account or "",
            "aud": service,
            "exp": now + self.server.expires_in,
            "nbf": now - 10,
            "iat": now,
            "jti": b64url(os.urandom(12)),
            "access": access,
        }
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.server.cert_b64]}
        signing_input = (
            b64url(json.dumps(header, separators=(",", ":")).encode())
            + "."
            + b64url(json.dumps(claims, separators=(",", ":")).encode())
        )
        signature = sign_rs256(self.server.key_path, signing_input.encode("ascii"))
        token = signing_input + "." + b64url(signature)
        issued_at = datetime.datetime.fromtimestamp(now, datetime.timezone.utc).isoformat()
        with self.server.lock:
            self.server.issued += 1
        self.reply(
            200,
            {
                "token": token,
                "access_token": token,
                "expires_in": self.server.expires_in,
                "issued_at": issued_at,
            },
        )
        self.log_line(200, f"account={account or '-'} granted={json.dumps(access)}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--key", required=True, help="PEM RSA private key")
    parser.add_argument("--cert", required=True, help="PEM certificate of that key")
    parser.add_argument("--issuer", required=True)
    parser.add_argument("--service", required=True)
    parser.add_argument("--users", required=True, help="file of user:password lines")
    parser.add_argument("--expires-in", type=int, default=300)
    args = parser.parse_args()

    server = http.server.ThreadingHTTPServer((args.addr, args.port), TokenHandler)
    server.daemon_threads = True
    server.key_path = args.key
    server.cert_b64 = cert_der_b64(args.cert)
    server.issuer = args.issuer
    server.service = args.service
    server.expires_in = args.expires_in
    server.users = {}
    server.lock = threading.Lock()
    server.issued = 0
    with open(args.users, encoding="utf-8") as f:
        for line in f:
            user, sep, password = line.rstrip("\n").partition(":")
            if sep:
                server.users[user] = password
    sys.stderr.write(f"token: listening on {args.addr}:{args.port}\n")
    sys.stderr.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
