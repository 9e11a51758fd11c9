#!/usr/bin/python3
"""Hostile and broken NBD clients for test-bad-input.sh, speaking the protocol by hand.

    bad-input.py handshake PORT LOG      option-phase abuse, one connection per case
    bad-input.py transmission PORT LOG   bad requests after GO; the connection stays in sync
    bad-input.py vanish PORT LOG         clients that disappear mid-option / mid-request
    bad-input.py flood PORT PID          a client that never reads its replies (prints RSS)
    bad-input.py hold PORT N READY STOP  N idle sessions in transmission until STOP exists
    bad-input.py limit PORT              connect until the daemon refuses (the session cap)
    bad-input.py slow PORT N SECS        N clients sending one handshake byte per second

Each case prints "ok: ..." when its expectation holds; any failure prints "FAIL: ..." and exits
1. LOG is the daemon's log: disconnects that the daemon must log are looked up there by the
client's own port ("nbd 127.0.0.1:PORT: disconnecting: REASON").
"""
import os
import select
import socket
import struct
import sys
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REP_MAGIC = 0x0003E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_MAGIC = 0x67446698
CHUNK_MAGIC = 0x668E33EF

OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS = 1, 2, 3, 5
OPT_INFO, OPT_GO, OPT_STRUCTURED, OPT_LIST_META, OPT_SET_META = 6, 7, 8, 9, 10
REP_ACK, REP_SERVER, REP_INFO = 1, 2, 3
ERR = 1 << 31
REP_ERR_UNSUP, REP_ERR_POLICY, REP_ERR_INVALID = ERR | 1, ERR | 2, ERR | 3
REP_ERR_UNKNOWN, REP_ERR_TOO_BIG = ERR | 6, ERR | 9

CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM = 0, 1, 2, 3, 4
CMD_WRITE_ZEROES, CMD_BLOCK_STATUS = 6, 7
CHUNK_NONE, CHUNK_OFFSET_DATA, CHUNK_ERROR = 0, 1, (1 << 15) | 1
EPERM, EINVAL, ENOSPC = 1, 22, 28
MAX_PAYLOAD = 32 << 20
OPT_MAX = 64 * 1024

PASSED = 0


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def ok(msg):
    global PASSED
    PASSED += 1
    print(f"ok: {msg}", flush=True)


def expect(cond, msg):
    if not cond:
        fail(msg)
    ok(msg)


def vmrss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    fail("no VmRSS")


def log_has(log, needle, timeout=3.0):
    """True once the daemon's log holds needle (waits up to timeout seconds)."""
    end = time.time() + timeout
    while True:
        with open(log, errors="replace") as f:
            if needle in f.read():
                return True
        if time.time() > end:
            return False
        time.sleep(0.05)


class Conn:
    def __init__(self, port, cflags=3, timeout=10.0, greet=True):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.lport = self.s.getsockname()[1]
        self.peer = f"nbd 127.0.0.1:{self.lport}"
        self.structured = False
        if greet:
            g = self.recvn(18)
            magic, opt_magic, hflags = struct.unpack(">QQH", g)
            if magic != NBDMAGIC or opt_magic != IHAVEOPT:
                fail(f"bad greeting {g!r}")
            if cflags is not None:
                self.send(struct.pack(">I", cflags))

    def send(self, b):
        self.s.sendall(b)

    def recvn(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = self.s.recv(min(n - len(buf), 1 << 20))
            if not chunk:
                raise EOFError(f"EOF after {len(buf)} of {n} bytes")
            buf += chunk
        return bytes(buf)

    def closed_by_server(self, timeout=5.0):
        """True when the server closes the connection (EOF or reset) within timeout."""
        self.s.settimeout(timeout)
        try:
            while True:
                if not self.s.recv(65536):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()

    # ---- options
    def opt(self, opt, data=b"", length=None):
        n = len(data) if length is None else length
        self.send(struct.pack(">QII", IHAVEOPT, opt, n) + data)

    def reply(self):
        magic, opt, typ, n = struct.unpack(">QIII", self.recvn(20))
        if magic != REP_MAGIC:
            fail(f"bad option reply magic {magic:#x}")
        return opt, typ, self.recvn(n)

    def final_reply(self, opt):
        """Reads replies to opt up to the final one (ACK or an error); returns (type, all)."""
        seen = []
        while True:
            o, typ, data = self.reply()
            if o != opt:
                fail(f"reply for option {o}, expected {opt}")
            seen.append((typ, data))
            if typ == REP_ACK or typ & ERR:
                return typ, seen

    def go(self, name=b"vol0", structured=False):
        if structured:
            self.opt(OPT_STRUCTURED)
            typ, _ = self.final_reply(OPT_STRUCTURED)
            if typ != REP_ACK:
                fail(f"STRUCTURED_REPLY refused: {typ:#x}")
            self.structured = True
        self.opt(OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
        typ, seen = self.final_reply(OPT_GO)
        if typ != REP_ACK:
            fail(f"GO {name!r} refused: {typ:#x} {seen!r}")
        for t, d in seen:
            if t == REP_INFO and struct.unpack(">H", d[:2])[0] == 0:
                self.size, self.tflags = struct.unpack(">QH", d[2:12])
                return self.size
        fail("GO without NBD_INFO_EXPORT")

    # ---- transmission
    def req(self, typ, off, length, flags=0, cookie=1, payload=b""):
        self.send(struct.pack(">IHHQQI", REQ_MAGIC, flags, typ, cookie, off, length) + payload)

    def simple(self, cookie, data_len=0):
        """One simple reply: returns (error, data); data only when the error is 0."""
        magic, err, c = struct.unpack(">IIQ", self.recvn(16))
        if magic != SIMPLE_MAGIC or c != cookie:
            fail(f"simple reply magic {magic:#x} cookie {c} (expected {cookie})")
        return err, (self.recvn(data_len) if err == 0 else b"")

    def chunks(self, cookie):
        """The reply to cookie as structured chunks up to DONE: [(type, payload)]. A simple
        reply (allowed for everything but READ) comes back as one pseudo-chunk (-1, error)."""
        out = []
        while True:
            magic = struct.unpack(">I", self.recvn(4))[0]
            if magic == SIMPLE_MAGIC:
                err, c = struct.unpack(">IQ", self.recvn(12))
                if c != cookie:
                    fail(f"simple reply cookie {c} (expected {cookie})")
                return [(-1, err)]
            flags, typ, c, n = struct.unpack(">HHQI", self.recvn(16))
            if magic != CHUNK_MAGIC or c != cookie:
                fail(f"chunk magic {magic:#x} cookie {c} (expected {cookie})")
            out.append((typ, self.recvn(n)))
            if flags & 1:
                return out

    def error_of(self, cookie, data_len=0):
        """The wire error of the reply to cookie (simple or structured); 0 on success."""
        if not self.structured:
            return self.simple(cookie, data_len)[0]
        for typ, payload in self.chunks(cookie):
            if typ == -1:
                return payload
            if typ == CHUNK_ERROR:
                return struct.unpack(">I", payload[:4])[0]
        return 0

    def read(self, off, n, cookie=7):
        self.req(CMD_READ, off, n, cookie=cookie)
        if not self.structured:
            err, data = self.simple(cookie, n)
            return err, data
        data = bytearray(n)
        for typ, payload in self.chunks(cookie):
            if typ == -1:
                fail("a simple reply to a structured READ")
            if typ == CHUNK_ERROR:
                return struct.unpack(">I", payload[:4])[0], b""
            if typ == CHUNK_OFFSET_DATA:
                o = struct.unpack(">Q", payload[:8])[0] - off
                data[o : o + len(payload) - 8] = payload[8:]
        return 0, bytes(data)

    def write(self, off, payload, cookie=9):
        self.req(CMD_WRITE, off, len(payload), cookie=cookie, payload=payload)
        return self.error_of(cookie)

    def works(self, what, off=1 << 20):
        """A write then a read at off: the connection is usable and in sync."""
        pat = os.urandom(4096)
        if self.write(off, pat, cookie=101) != 0:
            fail(f"{what}: write after it failed")
        err, data = self.read(off, 4096, cookie=102)
        expect(err == 0 and data == pat, f"{what}: connection still in sync")


def listing_works(port, what):
    c = Conn(port)
    c.opt(OPT_LIST)
    typ, seen = c.final_reply(OPT_LIST)
    names = [d[4 : 4 + struct.unpack(">I", d[:4])[0]] for t, d in seen if t == REP_SERVER]
    c.close()
    expect(typ == REP_ACK and b"vol0" in names, f"{what}: a fresh client still lists vol0")


# ---- cases ----------------------------------------------------------------------------------


def handshake(port, log):
    # Oversized option payload: skipped (not buffered), TOO_BIG, the connection goes on.
    c = Conn(port)
    c.opt(OPT_GO, b"\0" * (OPT_MAX + 1))
    typ, _ = c.final_reply(OPT_GO)
    expect(typ == REP_ERR_TOO_BIG, f"option of {OPT_MAX + 1} bytes: NBD_REP_ERR_TOO_BIG ({typ:#x})")
    c.opt(OPT_LIST)
    typ, _ = c.final_reply(OPT_LIST)
    expect(typ == REP_ACK, "after TOO_BIG: LIST on the same connection works")
    c.go()
    c.works("after TOO_BIG, GO")
    c.close()

    # A 4 GiB option announced, 64 MiB of it sent: drained without buffering, still waiting.
    c = Conn(port)
    c.opt(0x4242, length=0xFFFFFFFF)
    junk = b"\xa5" * (1 << 20)
    for _ in range(64):
        c.send(junk)
    c.s.settimeout(0.5)
    try:
        got = c.s.recv(1)
        expect(False, f"4 GiB option: no reply before its data is in ({got!r})")
    except socket.timeout:
        ok("4 GiB option: 64 MiB drained, no reply yet, connection open")
    c.close()

    # Names over the limits. GO with a 5000-byte name: TOO_BIG (strings are at most 4096).
    c = Conn(port)
    name = b"n" * 5000
    c.opt(OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    typ, _ = c.final_reply(OPT_GO)
    expect(typ == REP_ERR_TOO_BIG, f"GO with a 5000-byte name: TOO_BIG ({typ:#x})")
    name = b"tank/" + b"v" * 300
    c.opt(OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    typ, _ = c.final_reply(OPT_GO)
    expect(typ == REP_ERR_UNKNOWN, f"GO with a 305-byte name: ERR_UNKNOWN ({typ:#x})")
    c.opt(OPT_INFO, struct.pack(">I", 6) + b"nosuch" + struct.pack(">H", 0))
    typ, _ = c.final_reply(OPT_INFO)
    expect(typ == REP_ERR_UNKNOWN, f"INFO on an unknown export: ERR_UNKNOWN ({typ:#x})")
    c.go()
    c.works("after name errors, GO")
    c.close()

    # Garbage payloads: ERR_INVALID, and the connection goes on.
    c = Conn(port)
    c.opt(OPT_GO, struct.pack(">I", 1000) + b"vol0")  # name length beyond the payload
    typ, _ = c.final_reply(OPT_GO)
    expect(typ == REP_ERR_INVALID, f"GO with a name length past its data: ERR_INVALID ({typ:#x})")
    c.opt(OPT_GO, struct.pack(">I", 4) + b"vol0" + struct.pack(">H", 3) + b"\0\0")  # 3 infos, 1 sent
    typ, _ = c.final_reply(OPT_GO)
    expect(typ == REP_ERR_INVALID, f"GO with a short info list: ERR_INVALID ({typ:#x})")
    c.opt(OPT_LIST, b"junk")
    typ, _ = c.final_reply(OPT_LIST)
    expect(typ == REP_ERR_INVALID, f"LIST with data: ERR_INVALID ({typ:#x})")
    c.opt(OPT_GO, struct.pack(">I", 4) + b"v\0l0" + struct.pack(">H", 0))
    typ, _ = c.final_reply(OPT_GO)
    expect(typ == REP_ERR_INVALID, f"GO with a NUL in the name: ERR_INVALID ({typ:#x})")
    c.opt(OPT_STRUCTURED)
    c.final_reply(OPT_STRUCTURED)
    q = struct.pack(">I", 15) + b"base:allocation"
    meta = struct.pack(">I", 4) + b"vol0" + struct.pack(">I", 200) + q * 200
    c.opt(OPT_SET_META, meta)
    typ, _ = c.final_reply(OPT_SET_META)
    expect(typ == REP_ERR_TOO_BIG, f"SET_META_CONTEXT with 200 queries: TOO_BIG ({typ:#x})")
    c.opt(OPT_LIST_META, struct.pack(">I", 4) + b"vol0" + struct.pack(">I", 1000))
    typ, _ = c.final_reply(OPT_LIST_META)
    expect(typ == REP_ERR_INVALID, f"LIST_META_CONTEXT with a lying count: ERR_INVALID ({typ:#x})")
    c.opt(OPT_STRUCTURED)
    typ, _ = c.final_reply(OPT_STRUCTURED)
    expect(typ == REP_ERR_INVALID, f"STRUCTURED_REPLY twice: ERR_INVALID ({typ:#x})")
    c.go()
    c.structured = True
    c.works("after garbage options, GO (structured)")
    c.close()

    # Unknown options and STARTTLS without TLS.
    c = Conn(port)
    for opt in (0x1234, 0, 0xFFFFFFFF, 11):
        c.opt(opt, b"abc")
        typ, _ = c.final_reply(opt)
        expect(typ == REP_ERR_UNSUP, f"unknown option {opt:#x}: ERR_UNSUP ({typ:#x})")
    c.opt(OPT_STARTTLS)
    typ, _ = c.final_reply(OPT_STARTTLS)
    expect(typ == REP_ERR_POLICY, f"STARTTLS with TLS off: ERR_POLICY ({typ:#x})")
    c.go()
    c.works("after unknown options, GO")
    c.close()

    # Protocol violations that can only end the connection, each logged with its reason.
    cases = [
        ("unknown client flags", lambda c: None, 0x80, "unknown client flags"),
        ("bad option magic", lambda c: c.send(b"NOTMAGIC" + struct.pack(">II", OPT_LIST, 0)), 3,
         "bad option magic"),
        ("EXPORT_NAME of an unknown export", lambda c: c.opt(OPT_EXPORT_NAME, b"nosuch"), 3,
         "export refused"),
        ("EXPORT_NAME over 64 KiB", lambda c: c.opt(OPT_EXPORT_NAME, b"x" * (OPT_MAX + 1)), 3,
         "export name too long"),
        ("EXPORT_NAME of 5000 bytes", lambda c: c.opt(OPT_EXPORT_NAME, b"x" * 5000), 3, None),
    ]
    for what, act, cflags, reason in cases:
        c = Conn(port, cflags=cflags)
        act(c)
        expect(c.closed_by_server(), f"{what}: disconnected")
        if reason is not None:
            expect(log_has(log, f"{c.peer}: disconnecting: {reason}"), f"{what}: logged '{reason}'")
        c.close()
    c = Conn(port)
    c.opt(OPT_ABORT, b"ignored")
    typ, _ = c.final_reply(OPT_ABORT)
    expect(typ == REP_ACK and c.closed_by_server(), "ABORT: acknowledged, then closed")
    c.close()
    listing_works(port, "after the handshake cases")


def transmission(port, log):
    for structured in (False, True):
        kind = "structured" if structured else "simple"
        c = Conn(port)
        size = c.go(structured=structured)
        expect(size == 256 << 20, f"{kind}: GO gives the 256 MiB volume")
        checks = [
            ("read past the end", CMD_READ, size - 4096, 8192, 0, EINVAL),
            ("read at the end", CMD_READ, size, 1, 0, EINVAL),
            ("read with offset wrap-around", CMD_READ, (1 << 64) - 4096, 8192, 0, EINVAL),
            ("read over 32 MiB", CMD_READ, 0, MAX_PAYLOAD + 1, 0, EINVAL),
            ("read of 4 GiB - 1", CMD_READ, 0, 0xFFFFFFFF, 0, EINVAL),
            ("unknown command 99", 99, 0, 4096, 0, EINVAL),
            ("unknown command 0xffff", 0xFFFF, 0, 4096, 0, EINVAL),
            ("unknown flag bit 7 on READ", CMD_READ, 0, 4096, 1 << 7, EINVAL),
            ("unknown flag bit 15 on FLUSH", CMD_FLUSH, 0, 0, 1 << 15, EINVAL),
            ("FLUSH with a range", CMD_FLUSH, 4096, 4096, 0, EINVAL),
            ("TRIM past the end", CMD_TRIM, size - 4096, 8192, 0, EINVAL),
            ("WRITE_ZEROES past the end", CMD_WRITE_ZEROES, size, 4096, 0, ENOSPC),
            ("BLOCK_STATUS without a context", CMD_BLOCK_STATUS, 0, 4096, 0, EINVAL),
        ]
        for i, (what, typ, off, n, flags, want) in enumerate(checks):
            c.req(typ, off, n, flags=flags, cookie=1000 + i)
            got = c.error_of(1000 + i)
            expect(got == want, f"{kind}: {what}: error {want} (got {got})")
        # WRITE past the end: its payload is consumed, ENOSPC, the stream stays in sync.
        c.req(CMD_WRITE, size - 2048, 4096, cookie=77, payload=b"\x11" * 4096)
        got = c.error_of(77)
        expect(got == ENOSPC, f"{kind}: write past the end: ENOSPC (got {got})")
        c.req(CMD_WRITE, size, 65536, cookie=78, payload=b"\x22" * 65536)
        got = c.error_of(78)
        expect(got == ENOSPC, f"{kind}: write at the end: ENOSPC (got {got})")
        # Unknown command with a length: no payload is expected after it.
        c.works(f"{kind}: after the refused requests")
        # The largest request the server advertises works.
        err, data = c.read(0, MAX_PAYLOAD, cookie=55)
        expect(err == 0 and len(data) == MAX_PAYLOAD, f"{kind}: a read of exactly 32 MiB works")
        c.req(CMD_DISC, 0, 0)
        expect(c.closed_by_server(), f"{kind}: DISC closes the connection")
        c.close()

    # A WRITE announcing more than 32 MiB: the payload cannot be skipped safely; disconnect.
    c = Conn(port)
    c.go()
    c.req(CMD_WRITE, 0, MAX_PAYLOAD + 4096, cookie=5)
    expect(c.closed_by_server(), "write over 32 MiB: disconnected")
    expect(log_has(log, f"{c.peer}: disconnecting: write payload over the maximum"),
           "write over 32 MiB: logged")
    c.close()
    c = Conn(port)
    c.go()
    c.send(struct.pack(">IHHQQI", 0xDEADBEEF, 0, CMD_READ, 1, 0, 4096))
    expect(c.closed_by_server(), "bad request magic: disconnected")
    expect(log_has(log, f"{c.peer}: disconnecting: bad request magic"), "bad request magic: logged")
    c.close()
    listing_works(port, "after the transmission cases")


def vanish(port, log):
    peers = []
    # Mid option payload, mid request header, half a WRITE payload, a 32 MiB READ in flight,
    # 64 requests in flight then a reset.
    c = Conn(port)
    c.opt(OPT_GO, struct.pack(">I", 4) + b"vo")
    peers.append(("mid option", c))
    c = Conn(port)
    c.go()
    c.send(struct.pack(">IHHQ", REQ_MAGIC, 0, CMD_READ, 1))
    peers.append(("mid request header", c))
    c = Conn(port)
    c.go()
    c.req(CMD_WRITE, 0, 1 << 20, cookie=3, payload=b"\x33" * (512 << 10))
    peers.append(("half a write payload", c))
    c = Conn(port)
    c.go()
    c.req(CMD_READ, 0, MAX_PAYLOAD, cookie=4)
    peers.append(("32 MiB read in flight", c))
    c = Conn(port)
    c.go()
    for i in range(64):
        c.req(CMD_WRITE, i * 65536, 65536, cookie=i, payload=b"\x44" * 65536)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peers.append(("64 writes in flight, then a reset", c))
    time.sleep(0.2)
    for _, c in peers:
        c.close()
    for what, c in peers:
        expect(log_has(log, f"{c.peer}: closed"), f"client vanished {what}: session freed (logged)")
    # The half-written range was not written.
    c = Conn(port)
    c.go()
    err, data = c.read(0, 1 << 20)
    expect(err == 0 and b"\x33" * 4096 not in data, "half a write payload: nothing was written")
    c.close()
    listing_works(port, "after the vanishing clients")


def flood(port, pid):
    """One client asks for 16 x 32 MiB and never reads: print the daemon's RSS growth."""
    base = vmrss_kib(pid)
    c = Conn(port)
    c.go()
    for i in range(16):
        c.req(CMD_READ, 0, MAX_PAYLOAD, cookie=i)
    peak = base
    for _ in range(30):
        time.sleep(0.1)
        peak = max(peak, vmrss_kib(pid))
    # Its replies can still be read: the session is stalled, not broken.
    c.s.settimeout(30)
    got = set()
    for _ in range(16):  # replies may come in any order
        magic, err, cookie = struct.unpack(">IIQ", c.recvn(16))
        if magic != SIMPLE_MAGIC or err != 0:
            fail(f"flood: reply magic {magic:#x} error {err}")
        c.recvn(MAX_PAYLOAD)
        got.add(cookie)
    expect(got == set(range(16)), "a client that stopped reading gets all 16 replies when it resumes")
    c.close()
    print(f"rss_growth_kib {peak - base}", flush=True)


def stall(port, pid, n):
    """n clients each announce a 32 MiB WRITE, send 64 KiB of it and stall: the daemon may hold
    about what they sent, not what they announced. Then each sends the rest and must succeed."""
    base = vmrss_kib(pid)
    sent = 64 * 1024
    conns = []
    for i in range(n):
        c = Conn(port)
        c.go()
        c.req(CMD_WRITE, 0, MAX_PAYLOAD, cookie=500 + i, payload=bytes([i]) * sent)
        conns.append(c)
    time.sleep(1.0)
    growth = vmrss_kib(pid) - base
    print(f"stall: daemon RSS grew by {growth} KiB for {n} stalled 32 MiB WRITEs", flush=True)
    # Without allocation as the bytes come, each stalled WRITE held its whole 32 MiB at once.
    expect(growth < n * 8 * 1024, f"{n} stalled 32 MiB WRITEs hold less than 8 MiB each")
    for i, c in enumerate(conns):
        rest = bytes([i]) * (1 << 20)
        for off in range(sent, MAX_PAYLOAD, len(rest)):
            c.send(rest[: min(len(rest), MAX_PAYLOAD - off)])
    for i, c in enumerate(conns):
        c.s.settimeout(30)
        expect(c.error_of(500 + i) == 0, f"stalled WRITE {i} succeeds once its payload is complete")
    err, data = conns[-1].read(MAX_PAYLOAD - 4096, 4096, cookie=900)
    expect(err == 0 and data == bytes([n - 1]) * 4096, "the last completed WRITE is what reads back")
    for c in conns:
        c.close()


def hold(port, n, ready, stop):
    conns = []
    for i in range(n):
        c = Conn(port)
        c.go()
        conns.append(c)
    with open(ready + ".tmp", "w") as f:
        f.write(f"{len(conns)}\n")
    os.rename(ready + ".tmp", ready)
    while not os.path.exists(stop):  # until the test says so
        time.sleep(0.1)
    # No idle session was dropped: each still answers a read.
    for i, c in enumerate(conns):
        c.req(CMD_READ, 0, 512, cookie=i)
    good = sum(c.simple(i, 512)[0] == 0 for i, c in enumerate(conns))
    expect(good == n, f"all {n} idle sessions still answer after sitting idle ({good})")
    for c in conns:
        c.close()


def limit(port):
    conns = []
    refused = None
    for i in range(5000):
        try:
            c = Conn(port, cflags=None, timeout=10)
        except (EOFError, ConnectionResetError):
            refused = i
            break
        conns.append(c)
    expect(refused is not None, f"the daemon refuses connections past its cap (after {refused})")
    for c in conns:
        c.close()
    print(f"extra_accepted {refused}", flush=True)


def slow(port, n, secs):
    """n clients each send one byte per second of a handshake that needs 1020 bytes; report
    how long the daemon took to disconnect each."""
    msg = struct.pack(">I", 3) + struct.pack(">QII", IHAVEOPT, 0x999, 1000) + b"s" * 1000
    conns = [Conn(port, cflags=None) for _ in range(n)]
    start = time.time()
    alive = {c.s.fileno(): c for c in conns}
    took = {}
    k = 0
    while alive and time.time() - start < secs:
        for fd, c in list(alive.items()):
            try:
                c.s.send(msg[k : k + 1])
            except OSError:
                took[fd] = time.time() - start
                del alive[fd]
        k += 1
        deadline = time.time() + 1.0
        while alive and time.time() < deadline:
            r, _, _ = select.select(list(alive), [], [], max(0.0, deadline - time.time()))
            for fd in r:
                try:
                    data = alive[fd].s.recv(4096)
                except OSError:
                    data = b""
                if not data:
                    took[fd] = time.time() - start
                    del alive[fd]
    print(f"slow: {len(took)} of {n} disconnected after {k} bytes each; "
          f"times {min(took.values(), default=-1):.1f}..{max(took.values(), default=-1):.1f} s; "
          f"{len(alive)} still open", flush=True)
    for c in conns:
        c.close()
    expect(len(alive) == 0, f"all {n} slow-loris clients disconnected within {secs} s")
    expect(min(took.values()) >= 25, "no slow client was cut before the negotiation timeout")


def main():
    cmd = sys.argv[1]
    port = int(sys.argv[2])
    if cmd == "handshake":
        handshake(port, sys.argv[3])
    elif cmd == "transmission":
        transmission(port, sys.argv[3])
    elif cmd == "vanish":
        vanish(port, sys.argv[3])
    elif cmd == "flood":
        flood(port, int(sys.argv[3]))
    elif cmd == "stall":
        stall(port, int(sys.argv[3]), int(sys.argv[4]))
    elif cmd == "hold":
        hold(port, int(sys.argv[3]), sys.argv[4], sys.argv[5])
    elif cmd == "limit":
        limit(port)
    elif cmd == "slow":
        slow(port, int(sys.argv[3]), float(sys.argv[4]))
    else:
        fail(f"unknown command {cmd}")
    print(f"passed {PASSED}", flush=True)


if __name__ == "__main__":
    main()
