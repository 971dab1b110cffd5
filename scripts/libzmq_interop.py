#!/usr/bin/env python3
"""Checks the ZMTP guard against libzmq (through pyzmq), which zmq.rs tests cannot cover:
libzmq sends its greeting in parts and, with heartbeats on, PING commands.

Needs pyzmq (`pip install pyzmq`) and the example built:
    cargo build --release -p meshmon-agent --example guard_echo
    python3 scripts/libzmq_interop.py target/release/examples/guard_echo

Prints one line per check and exits non-zero if one fails.
"""
import signal
import subprocess
import sys
import threading
import time

import zmq
from zmq.utils.monitor import recv_monitor_message

HEARTBEAT = {zmq.HEARTBEAT_IVL: 100, zmq.HEARTBEAT_TIMEOUT: 500, zmq.HEARTBEAT_TTL: 1000}


def disconnects(monitor):
    n = 0
    while monitor.poll(0):
        if recv_monitor_message(monitor)["event"] == zmq.EVENT_DISCONNECTED:
            n += 1
    return n


def check_inbound(binary, ctx, heartbeats):
    guard = subprocess.Popen([binary, "inbound"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    addr = guard.stdout.readline().strip()
    dealer = ctx.socket(zmq.DEALER)
    for opt, value in (HEARTBEAT.items() if heartbeats else []):
        dealer.setsockopt(opt, value)
    dealer.setsockopt(zmq.RCVTIMEO, 3000)
    monitor = dealer.get_monitor_socket()
    dealer.connect(f"tcp://{addr}")
    # Busy: a message every 50 ms, each echoed.
    for i in range(40):
        dealer.send_multipart([b"busy", str(i).encode(), b"x" * 300])
        assert dealer.recv_multipart()[1] == str(i).encode()
        time.sleep(0.05)
    busy_drops = disconnects(monitor)
    # Quiet for 2 s, then talk again.
    time.sleep(2)
    quiet_drops = disconnects(monitor)
    dealer.send_multipart([b"after", b"quiet"])
    ok = dealer.recv_multipart() == [b"after", b"quiet"]
    print(f"inbound  libzmq DEALER -> guard (in-line ROUTER, no zmq.rs), heartbeats={heartbeats}: "
          f"echo ok={ok}, disconnects busy={busy_drops} quiet={quiet_drops}")
    dealer.disable_monitor()
    dealer.close(0)
    guard.send_signal(signal.SIGINT)
    stats = guard.communicate(timeout=5)[1].strip()
    print(f"         guard: {stats}")
    return ok and busy_drops == 0


def check_outbound(binary, ctx, heartbeats):
    router = ctx.socket(zmq.ROUTER)
    for opt, value in (HEARTBEAT.items() if heartbeats else []):
        router.setsockopt(opt, value)
    port = router.bind_to_random_port("tcp://127.0.0.1")
    stop = threading.Event()

    def echo():
        while not stop.is_set():
            if router.poll(100):
                router.send_multipart(router.recv_multipart())

    thread = threading.Thread(target=echo)
    thread.start()
    run = subprocess.run([binary, "outbound", f"127.0.0.1:{port}", "20", "100"],
                         capture_output=True, text=True, timeout=30)
    stop.set()
    thread.join()
    router.close(0)
    ok = run.returncode == 0 and run.stdout.strip() == "ok"
    print(f"outbound link (in-line DEALER, no zmq.rs) -> libzmq ROUTER, heartbeats={heartbeats}: "
          f"ok={ok} {run.stderr.strip()}")
    return ok


def main():
    binary = sys.argv[1]
    ctx = zmq.Context()
    print(f"libzmq {zmq.zmq_version()}")
    results = [check(binary, ctx, hb) for check in (check_inbound, check_outbound) for hb in (False, True)]
    ctx.term()
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
