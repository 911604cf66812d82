"""A bad network link between two TUN devices, for test/store/bad-network.test.ts.

The kernel here has no netem qdisc, so this forwarder plays its part: it
opens two TUN devices (IFF_TUN | IFF_NO_PI) in the root namespace, prints
"ready", then copies every packet read from one to the other after a delay
of DELAY_MS +- JITTER_MS (per direction), dropping LOSS of them (a seeded
RNG, so a run is repeatable). The test moves one device into another
namespace (the open fd stays attached) and gives both addresses.

Packets keep their order within a direction (a packet never leaves before
the one read ahead of it), so the jitter shows as varying delay, not as
reordering. On stdin, "down" drops every packet (queued ones too) until
"up": the outage. Each command is answered with "ok" on stdout.

  /usr/bin/python3 -I tunlink.py DEV_A DEV_B DELAY_MS JITTER_MS LOSS SEED
"""
import fcntl
import heapq
import os
import random
import selectors
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


def main():
    dev_a, dev_b = sys.argv[1], sys.argv[2]
    delay, jitter = float(sys.argv[3]) / 1000, float(sys.argv[4]) / 1000
    loss, rng = float(sys.argv[5]), random.Random(int(sys.argv[6]))
    fd_a, fd_b = open_tun(dev_a), open_tun(dev_b)
    peer = {fd_a: fd_b, fd_b: fd_a}
    # per direction (keyed by the fd written to): when its last packet leaves
    last_due = {fd_a: 0.0, fd_b: 0.0}
    queue = []  # (due, seq, out_fd, packet)
    seq = 0
    up = True
    selector = selectors.DefaultSelector()
    for fd in (fd_a, fd_b):
        selector.register(fd, selectors.EVENT_READ)
    selector.register(sys.stdin.fileno(), selectors.EVENT_READ)
    print("ready", flush=True)
    commands = b""
    while True:
        timeout = max(0.0, queue[0][0] - time.monotonic()) if queue else None
        for key, _ in selector.select(timeout):
            fd = key.fd
            if fd == sys.stdin.fileno():
                data = os.read(fd, 4096)
                if not data:
                    return  # the test went away
                commands += data
                while b"\n" in commands:
                    line, commands = commands.split(b"\n", 1)
                    if line.strip() == b"down":
                        up = False
                        queue.clear()
                    elif line.strip() == b"up":
                        up = True
                    print("ok", flush=True)
                continue
            # drain what the kernel has for this device
            while True:
                try:
                    packet = os.read(fd, 65536)
                except BlockingIOError:
                    break
                if not up or rng.random() < loss:
                    continue
                out = peer[fd]
                due = max(time.monotonic() + delay + rng.uniform(-jitter, jitter), last_due[out])
                last_due[out] = due
                seq += 1
                heapq.heappush(queue, (due, seq, out, packet))
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, packet = heapq.heappop(queue)
            try:
                os.write(out, packet)
            except OSError:
                pass  # the device is not up (yet): the packet is lost, as on a wire


if __name__ == "__main__":
    main()
