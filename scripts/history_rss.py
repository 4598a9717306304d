#!/usr/bin/env python3
"""Measures musterd's resident memory under updates of large instances.

Starts MUSTERD (a fresh data directory, 127.0.0.1 port 0, any extra flags
after --), registers --instances instances with --metadata-kib KiB of
metadata each, then sends --updates updates spread over them (each one a
real change) from one thread per instance, and prints musterd's VmRSS
before and after, and the history /healthz reports. With --watch, a watcher
of the service reads every event meanwhile (so each event's text is made).

  scripts/history_rss.py build/musterd --updates 70000
  scripts/history_rss.py build/musterd --updates 70000 -- --history-bytes 64MiB

The figures in docs/operations.md ("Memory") come from this script.
"""
import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def body(version, metadata_kib):
    entries = max(1, metadata_kib * 1024 // 512)
    tag = str(version)
    metadata = {f"key{k}": tag + "x" * (512 - len(tag)) for k in range(entries)}
    return json.dumps({"address": "10.0.0.1:80", "ttl_seconds": 0, "metadata": metadata})


def put(conn, path, payload):
    conn.request("PUT", path, payload, {"Content-Type": "application/json"})
    r = conn.getresponse()
    r.read()
    if r.status not in (200, 201):
        raise RuntimeError(f"PUT {path}: {r.status}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("musterd")
    p.add_argument("--instances", type=int, default=10)
    p.add_argument("--updates", type=int, default=70000)
    p.add_argument("--metadata-kib", type=int, default=32)
    p.add_argument("--watch", action="store_true")
    p.add_argument("flags", nargs="*")
    a = p.parse_args()

    data = tempfile.mkdtemp(prefix="muster-history-rss-")
    proc = subprocess.Popen([a.musterd, "--listen", "127.0.0.1:0", "--data-dir", data, *a.flags],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = None
        for line in proc.stdout:
            m = re.search(r"listening on 127\.0\.0\.1:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            sys.exit("musterd did not start")
        threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()

        conn = http.client.HTTPConnection("127.0.0.1", port)
        for i in range(a.instances):
            put(conn, f"/api/v1/services/big/instances/i-{i}", body(0, a.metadata_kib))
        time.sleep(0.5)
        before = rss_bytes(proc.pid)

        watched = [0]
        if a.watch:
            sock = socket.create_connection(("127.0.0.1", port))
            sock.sendall(b"GET /api/v1/watch?service=big HTTP/1.1\r\nHost: x\r\n\r\n")

            def drain():
                while True:
                    chunk = sock.recv(1 << 20)
                    if not chunk:
                        return
                    watched[0] += chunk.count(b"\nevent: ")
            threading.Thread(target=drain, daemon=True).start()

        per = a.updates // a.instances
        errors = []

        def writer(i):
            c = http.client.HTTPConnection("127.0.0.1", port)
            try:
                for v in range(1, per + 1):
                    put(c, f"/api/v1/services/big/instances/i-{i}", body(v, a.metadata_kib))
            except Exception as e:  # reported below
                errors.append(e)

        start = time.time()
        threads = [threading.Thread(target=writer, args=(i,)) for i in range(a.instances)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        took = time.time() - start
        time.sleep(1)
        after = rss_bytes(proc.pid)
        # A new connection: the first one idled past --idle-timeout meanwhile.
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", "/healthz")
        health = json.loads(conn.getresponse().read())
        mib = 1 << 20
        print(f"updates: {per * a.instances} of {a.instances} instances with "
              f"{a.metadata_kib} KiB of metadata in {took:.1f} s ({'with' if a.watch else 'no'} watcher"
              f"{f', {watched[0]} events read' if a.watch else ''}); errors: {len(errors)}")
        print(f"musterd VmRSS: {before / mib:.0f} MiB before, {after / mib:.0f} MiB after "
              f"(+{(after - before) / mib:.0f} MiB)")
        print(f"history: {health.get('history', '(not reported)')}")
    finally:
        proc.kill()
        proc.wait()
        shutil.rmtree(data, ignore_errors=True)


if __name__ == "__main__":
    main()
