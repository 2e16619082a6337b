#!/usr/bin/env python3
"""Response rate limiting probe (issue 11): COUNT identical UDP queries
from one source socket to 127.0.0.1:PORT at QPS queries per second; prints
how many were answered in full, answered truncated (TC: slipped) or not
answered (dropped). Loopback only.

    bench/rrl-probe.py PORT [NAME] [COUNT] [QPS]
    -> RRL sent=3000 full=... tc=... none=...
"""
import os
import select
import socket
import struct
import sys
import time


def query(qid, name):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.strip(".").split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", 1, 1)


def main():
    port = int(sys.argv[1])
    name = sys.argv[2] if len(sys.argv) > 2 else "ha.com"
    count = int(sys.argv[3]) if len(sys.argv) > 3 else 3000
    qps = float(sys.argv[4]) if len(sys.argv) > 4 else 41000.0
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind(("127.0.0.1", 0))
    s.connect(("127.0.0.1", port))
    s.setblocking(False)
    full = tc = 0
    seen = set()

    def drain():
        nonlocal full, tc
        while True:
            try:
                r = s.recv(4096)
            except BlockingIOError:
                return
            if len(r) < 12:
                continue
            qid, flags = struct.unpack(">HH", r[:4])
            if qid in seen:
                continue
            seen.add(qid)
            if flags & 0x0200:
                tc += 1
            else:
                full += 1

    start = time.perf_counter()
    base = os.getpid() & 0x3FFF
    for i in range(count):
        due = start + i / qps
        while time.perf_counter() < due:
            pass
        s.send(query((base + i) & 0xFFFF, name))
        if i % 16 == 0:
            drain()
    took = time.perf_counter() - start
    # stragglers: until 300 ms pass without a reply (at most 3 s)
    end = time.perf_counter() + 3
    while time.perf_counter() < end:
        if not select.select([s], [], [], 0.3)[0]:
            break
        drain()
    print(
        "RRL sent=%d full=%d tc=%d none=%d rate=%.0f"
        % (count, full, tc, count - full - tc, count / took)
    )


if __name__ == "__main__":
    main()
