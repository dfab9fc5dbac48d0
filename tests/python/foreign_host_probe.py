"""Child process of test_base_url.py: try every base_url bypass against a non-loopback listener.

Moves itself into a network namespace of its own (as root, or as the mapped root of a new user
namespace), brings that namespace's loopback device up, gives it the non-loopback address
198.18.0.1 (the benchmarking range) and listens there. Then every URL of argv[1] (a JSON list of
templates with "{port}") goes through DDStream(), DDStream.check(), DDStream.plan() and
DDSTREAM_BASE_URL, and a control request with allow_insecure_http shows that the listener sees
what reaches it. Prints one JSON object on stdout. The namespace, with its address, ends with
this process: the machine's own network is never touched.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
import select
import socket
import struct
import sys
import threading
import time
from typing import Any

FOREIGN = "198.18.0.1"
CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
SIOCGIFFLAGS, SIOCSIFFLAGS, SIOCSIFADDR = 0x8913, 0x8914, 0x8916
IFF_UP, IFF_RUNNING = 0x1, 0x40


def enter_private_network() -> None:
    """Called before anything starts a thread: unshare(CLONE_NEWUSER) needs a single thread."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) == 0:
        return
    as_root = os.strerror(ctypes.get_errno())
    uid, gid = os.geteuid(), os.getegid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        raise OSError(f"unshare(CLONE_NEWNET): {as_root}; unshare(CLONE_NEWUSER|CLONE_NEWNET): "
                      f"{os.strerror(ctypes.get_errno())} (run as root, or allow unprivileged "
                      "user namespaces)")
    with open("/proc/self/setgroups", "w") as f:
        f.write("deny")
    with open("/proc/self/uid_map", "w") as f:
        f.write(f"0 {uid} 1")
    with open("/proc/self/gid_map", "w") as f:
        f.write(f"0 {gid} 1")


def add_foreign_address() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        got = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sh14x", b"lo", 0))
        flags = struct.unpack("16sh", got[:18])[1] | IFF_UP | IFF_RUNNING
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sh14x", b"lo", flags))
        addr = struct.pack("16sHH4s8x", b"lo:1", socket.AF_INET, 0, socket.inet_aton(FOREIGN))
        fcntl.ioctl(s.fileno(), SIOCSIFADDR, addr)


class Listener:
    """Counts the connections and bytes that reach FOREIGN; never answers."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((FOREIGN, 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.received = b""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            if not select.select([self.sock], [], [], 0.05)[0]:
                continue
            conn, _ = self.sock.accept()
            self.connections += 1
            with conn:
                while select.select([conn], [], [], 0.3)[0]:
                    data = conn.recv(4096)
                    if not data:
                        break
                    self.received += data

    def close(self) -> None:
        time.sleep(0.3)  # a connection still on its way would show by now
        self.stop.set()
        self.thread.join()
        self.sock.close()


def main() -> int:
    templates: list[str] = json.loads(sys.argv[1])
    api_key, app_key = sys.argv[2], sys.argv[3]
    try:
        enter_private_network()
        add_foreign_address()
        listener = Listener()
    except OSError as exc:
        print(json.dumps({"setup_error": str(exc)}))
        return 0
    import ddstream as dd  # after unshare: nothing may have started a thread before

    def config(url: str | None, **extra: Any) -> dd.DDStreamConfig:
        return dd.DDStreamConfig(api_key=api_key, app_key=app_key, query="avg:system.cpu.user{*}",
                                 range_start=1700000000, range_end=1700003600, base_url=url,
                                 max_retries=0, connect_timeout_ms=2000, request_timeout_ms=2000,
                                 **extra)

    def outcome(call: Any) -> str:
        try:
            call()
        except dd.DDStreamError as exc:
            return f"{type(exc).__name__}: {exc}"
        return "accepted"

    results = []
    for template in templates:
        url = template.replace("{port}", str(listener.port))
        cfg = config(url)
        row = {
            "url": url,
            "DDStream": outcome(lambda cfg=cfg: dd.DDStream(cfg).close()),
            "check": outcome(lambda cfg=cfg: dd.DDStream.check(cfg)),
            "plan": outcome(lambda cfg=cfg: dd.DDStream.plan(cfg)),
        }
        os.environ["DDSTREAM_BASE_URL"] = url
        row["environment"] = outcome(lambda: dd.DDStream.check(config(None)))
        del os.environ["DDSTREAM_BASE_URL"]
        results.append(row)
    time.sleep(0.3)
    reached = {"connections": listener.connections, "bytes": len(listener.received)}
    control = outcome(lambda: dd.DDStream.check(
        config(f"http://{FOREIGN}:{listener.port}", allow_insecure_http=True)))
    listener.close()
    print(json.dumps({
        "results": results,
        "reached": reached,
        "control": control,
        "control_connections": listener.connections - reached["connections"],
        "control_saw_key": api_key.encode() in listener.received,
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
