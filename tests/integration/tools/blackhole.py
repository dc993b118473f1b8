#!/usr/bin/env python3
"""A server that accepts TCP connections and never answers: a ping server behind a firewall that
swallows requests, as opposed to a closed port that refuses them.

Prints "listening port=N" once bound, then "accepted n=K" for every connection. Connections are
held open (and their bytes read and dropped) until the peer closes them or the process ends.
"""

import argparse
import socket
import sys
import threading


def hold(conn):
    with conn:
        while conn.recv(65536):
            pass


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", args.port))
    server.listen(64)
    print(f"listening port={args.port}", flush=True)
    accepted = 0
    while True:
        conn, _ = server.accept()
        accepted += 1
        print(f"accepted n={accepted}", flush=True)
        threading.Thread(target=hold, args=(conn,), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
