"""A minimal pipelined RTPProxy client on a raw UDP socket: the baseline the engine benchmarks
measure rtppctl against (bench_raw_window.py here; the load and batch benchmarks import it too).

It is what a careful programmer writes in a few lines when speed is all that matters: one connected
UDP socket, a window of commands in flight, cookies `<prefix>_<counter>` (a random prefix per run,
so the relay's reply cache never answers one from another run), replies matched by cookie in a
dict, and no validation, decoding, timing per request or error handling beyond what keeps it from
hanging (after a silence of `RESEND_AFTER` seconds every outstanding command is sent again with its
own cookie, which the relay answers from its reply cache). rtppctl's engine must come close to it.

    from _minimal_client import v_loop, cycles
    rate = v_loop("udp:127.0.0.1:22222", 20_000, 16)               # V requests per second
    per_second, cpu_per_cycle = cycles(("127.0.0.1", 22222), 2_000, 16)

Run both in the same run, against the same relay, interleaved with the thing measured: absolute
rates vary between machines and from minute to minute, ratios measured together do not.
"""

from __future__ import annotations

import os
import socket
import time

#: Seconds without any reply after which every outstanding command is sent again (same cookie).
RESEND_AFTER = 1.0
#: A run that has made no progress for this long raises instead of hanging.
GIVE_UP_AFTER = 30.0


def _connect(addr: str | tuple[str, int]) -> socket.socket:
    """A connected UDP socket to `addr`: a node spec `udp:HOST:PORT` / `udp6:HOST:PORT`, or a
    (host, port) tuple."""
    if isinstance(addr, str):
        scheme, _, rest = addr.partition(":")
        host, _, port = rest.rpartition(":")
        family = socket.AF_INET6 if scheme == "udp6" or ":" in host else socket.AF_INET
        target: tuple = (host, int(port))
    else:
        target = (addr[0], int(addr[1]))
        family = socket.AF_INET6 if ":" in target[0] else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.connect(target)
    sock.settimeout(RESEND_AFTER)
    return sock


def _prefix() -> str:
    return "m" + os.urandom(6).hex()


def _wait(sock: socket.socket, outstanding: dict[bytes, bytes], last_progress: float) -> bytes | None:
    """One reply datagram, or None after a silence (everything outstanding is re-sent then)."""
    try:
        return sock.recv(65535)
    except TimeoutError:
        if time.monotonic() - last_progress > GIVE_UP_AFTER:
            raise RuntimeError(f"the relay stopped answering ({len(outstanding)} commands outstanding)") from None
        for packet in outstanding.values():
            sock.send(packet)
        return None


def v_loop(addr: str | tuple[str, int], n: int, window: int = 16) -> float:
    """Send `n` `V` commands with up to `window` in flight; return requests per second.

    The clock runs from the first send to the last reply (wall time, time.perf_counter).
    """
    sock = _connect(addr)
    prefix = _prefix()
    outstanding: dict[bytes, bytes] = {}
    sent = received = 0
    last_progress = time.monotonic()
    started = time.perf_counter()
    try:
        while received < n:
            while sent < n and len(outstanding) < window:
                cookie = f"{prefix}_{sent} ".encode()
                packet = cookie + b"V"
                outstanding[cookie] = packet
                sock.send(packet)
                sent += 1
            data = _wait(sock, outstanding, last_progress)
            if data is None:
                continue
            if outstanding.pop(data[: data.find(b" ") + 1], None) is not None:
                received += 1
                last_progress = time.monotonic()
        return n / (time.perf_counter() - started)
    finally:
        sock.close()


def cycles(addr: str | tuple[str, int], n: int, window: int = 16) -> tuple[float, float]:
    """`n` offer+answer+delete cycles: per call `U`, then `L` once `U` answered, then `D` once `L`
    answered (one command of a call outstanding at a time), up to `window` calls in flight.

    Returns (cycles per second of wall time, CPU seconds of this process per cycle, from
    time.process_time). Each call has a Call-ID of its own (`<prefix>-<n>@bench`), tags `ft`/`tt`,
    and media ports 30000 / 30010 on 127.0.0.1; the relay holds at most `window` sessions at once.
    """
    sock = _connect(addr)
    prefix = _prefix()
    #: cookie -> (packet, call number, step): step 0 U, 1 L, 2 D.
    outstanding: dict[bytes, bytes] = {}
    steps: dict[bytes, tuple[int, int]] = {}
    counter = 0
    started_calls = finished = 0
    last_progress = time.monotonic()

    def send(number: int, step: int) -> None:
        nonlocal counter
        counter += 1
        call = f"{prefix}-{number}@bench"
        if step == 0:
            command = f"U {call} 127.0.0.1 30000 ft;1"
        elif step == 1:
            command = f"L {call} 127.0.0.1 30010 ft;1 tt;1"
        else:
            command = f"D {call} ft tt"
        cookie = f"{prefix}_{counter} ".encode()
        packet = cookie + command.encode()
        outstanding[cookie] = packet
        steps[cookie] = (number, step)
        sock.send(packet)

    cpu = time.process_time()
    started = time.perf_counter()
    try:
        while finished < n:
            while started_calls < n and len(outstanding) < window:
                send(started_calls, 0)
                started_calls += 1
            data = _wait(sock, outstanding, last_progress)
            if data is None:
                continue
            cookie = data[: data.find(b" ") + 1]
            if outstanding.pop(cookie, None) is None:
                continue
            number, step = steps.pop(cookie)
            last_progress = time.monotonic()
            if step < 2:
                send(number, step + 1)
            else:
                finished += 1
        wall = time.perf_counter() - started
        return n / wall, (time.process_time() - cpu) / n
    finally:
        sock.close()
