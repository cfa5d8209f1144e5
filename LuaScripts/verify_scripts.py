#!/usr/bin/env python3
"""Verification harness for the StampedeCache Lua scripts.

Starts a private redis-server on a unix socket in a temporary directory,
loads every script with SCRIPT LOAD (checking that the SHA-1 Redis returns is
the SHA-1 of the file bytes), runs the scenarios below through EVALSHA and
shuts the server down again. No third-party packages: a tiny RESP2 client is
included so replies are checked with their exact RESP types (integer vs bulk
string), exact array lengths, and binary-safe values.

Usage: python3 LuaScripts/verify_scripts.py [path/to/redis-server]
Set STAMPEDE_VERIFY_CLUSTER=1 to run the same checks against a single-node
Redis Cluster (cluster-enabled, all slots on this node).
Exit status 0 = all checks passed.
"""

import hashlib
import re
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ["get_or_lock", "commit", "release", "invalidate_key", "hot_touch", "handoff", "semantic_register"]
MAX_EXACT = 2 ** 53 - 1


class RedisErr(Exception):
    pass


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.buf = b""

    def _fill(self):
        d = self.s.recv(65536)
        if not d:
            raise EOFError("connection closed")
        self.buf += d

    def _line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            self._fill()
        d, self.buf = self.buf[:n], self.buf[n + 2:]
        return d

    def read(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return ("status", rest)
        if t == b"-":
            return RedisErr(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self.read() for _ in range(n)]
        raise ValueError("bad RESP type %r" % line)

    def send(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            if isinstance(a, int):
                a = str(a).encode()
            elif isinstance(a, str):
                a = a.encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.s.sendall(b"".join(out))

    def call(self, *args):
        self.send(*args)
        r = self.read()
        if isinstance(r, RedisErr):
            raise r
        return r

    def call_err(self, *args):
        self.send(*args)
        return self.read()


FAILS = []
PASSES = [0]


def check(cond, what):
    if cond:
        PASSES[0] += 1
    else:
        FAILS.append(what)
        print("FAIL:", what)


def main():
    server = sys.argv[1] if len(sys.argv) > 1 else shutil.which("redis-server")
    d = tempfile.mkdtemp(prefix="stampede-lua-")
    sock = os.path.join(d, "redis.sock")
    cluster = os.environ.get("STAMPEDE_VERIFY_CLUSTER") == "1"
    argv = [server, "--port", "0", "--unixsocket", sock,
            "--save", "", "--appendonly", "no", "--dir", d,
            "--enable-debug-command", "local"]
    if cluster:
        # cluster mode needs a TCP port and a cluster bus port. Ask the OS for
        # two free ones and pass the bus port explicitly (the default bus port,
        # port + 10000, can be above 65535 for an ephemeral port, and then the
        # server exits at startup).
        held = []
        for _ in range(2):
            ps = socket.socket()
            ps.bind(("127.0.0.1", 0))
            held.append(ps)
        port, bus = (ps.getsockname()[1] for ps in held)
        for ps in held:
            ps.close()
        argv[1:3] = ["--port", str(port), "--bind", "127.0.0.1"]
        argv += ["--cluster-enabled", "yes", "--cluster-port", str(bus),
                 "--cluster-config-file", os.path.join(d, "nodes.conf")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        c = None
        for _ in range(200):
            if proc.poll() is not None:
                raise RuntimeError("redis-server exited at startup (status %r)" % proc.returncode)
            try:
                c = Conn(sock)
                c.call("PING")
                break
            except (OSError, EOFError):
                c = None
                time.sleep(0.05)
        if c is None:
            raise RuntimeError("redis-server did not accept connections on " + sock)
        if cluster:
            c.call("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
            for _ in range(100):
                if b"cluster_state:ok" in c.call("CLUSTER", "INFO"):
                    break
                time.sleep(0.05)
            print("running against a single-node cluster")
        sub = Conn(sock)
        run(c, sub)
    finally:
        try:
            Conn(sock).send("SHUTDOWN", "NOSAVE")
        except Exception:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(d, ignore_errors=True)
    print("%d checks passed, %d failed" % (PASSES[0], len(FAILS)))
    sys.exit(1 if FAILS else 0)


HEADER_RE = re.compile(rb"^sc2 (\d+) (\d+) (\d+) (\d+) (\d+)\n")


def parse_blob(blob):
    """(fu, su, ct, cms, fence, value) of an entry blob, or None if the header is bad."""
    m = HEADER_RE.match(blob)
    if not m:
        return None
    return tuple(int(x) for x in m.groups()) + (blob[m.end():],)


with open(os.path.join(HERE, "prelude.lua"), "rb") as _f:
    PRELUDE = _f.read()


def run(c, sub):
    sha = {}
    for name in SCRIPTS:
        with open(os.path.join(HERE, name + ".lua"), "rb") as f:
            own = f.read()
        check(own.startswith(b"-- StampedeCache :: " + name.encode() + b".lua\n"),
              name + ": starts with its header comment")
        # What runs on the server (and what the embedded Swift copy holds): prelude + script.
        text = PRELUDE + own
        got = c.call("SCRIPT", "LOAD", text).decode()
        check(got == hashlib.sha1(text).hexdigest(), name + ": SCRIPT LOAD sha == sha1(file bytes)")
        sha[name] = got

    P = "sc:"
    RET = 86400000

    def keys(e):
        return [P + "{" + e + "}:" + s for s in ("v", "l", "f", "h", "d")]

    def V(e):
        return keys(e)[0]

    def L(e):
        return keys(e)[1]

    def F(e):
        return keys(e)[2]

    def H(e):
        return keys(e)[3]

    def D(e):
        return keys(e)[4]

    def handoff(e, token, value=b"v", life=5000, chan="chan", reason="truncated"):
        return c.call("EVALSHA", sha["handoff"], 3, V(e), L(e), D(e), str(token), value, life, chan, e, reason)

    def gol(e, lock_ttl=5000, ret=RET, beta="0", rnd="0.5"):
        return c.call("EVALSHA", sha["get_or_lock"], 3, V(e), L(e), F(e), lock_ttl, ret, beta, rnd)

    def gol_raw(e, lock_ttl=5000, ret=RET, beta="0", rnd="0.5"):
        return c.call_err("EVALSHA", sha["get_or_lock"], 3, V(e), L(e), F(e), lock_ttl, ret, beta, rnd)

    def gol_force(e, lock_ttl=5000, ret=RET):
        return c.call("EVALSHA", sha["get_or_lock"], 3, V(e), L(e), F(e), lock_ttl, ret, "0", "0.5", "1")

    def commit(e, token, value=b"v", fresh=1000, stale=5000, jitter="0", jr="0",
               cms=10, chan="chan", ret=RET):
        return c.call("EVALSHA", sha["commit"], 3, V(e), L(e), F(e), str(token), value, fresh, stale,
                      jitter, jr, cms, chan, e, ret)

    def hot(e, n=1, thr=1000, win=1000, hot_ttl=60000, ret=RET):
        return c.call("EVALSHA", sha["hot_touch"], 3, V(e), F(e), H(e), n, thr, win, hot_ttl, ret)

    def release(e, token, chan="chan", msg="", pub="1", hold=None):
        extra = [] if hold is None else [str(hold)]
        return c.call("EVALSHA", sha["release"], 2, V(e), L(e), str(token), chan, e, msg, pub, *extra)

    def inval(e, chan="chan"):
        return c.call("EVALSHA", sha["invalidate_key"], 2, V(e), L(e), chan, e)

    def srv_now():
        t = c.call("TIME")
        return int(t[0]) * 1000 + int(t[1]) // 1000

    def pexp(e):
        return c.call("PEXPIRETIME", V(e))

    def shape(r, status, types):
        ok = (isinstance(r, list) and len(r) == len(types) + 1 and r[0] == status.encode()
              and all(type(x) is t for x, t in zip(r[1:], types)))
        check(ok, "shape %s %r" % (status, r if not isinstance(r, list) else [x[:80] if isinstance(x, bytes) else x for x in r]))

    I, B = int, bytes
    FRESH = [B, I, I]
    EARLY = [B, I, I, I]
    STALE = [B, I, I, I, I, I]
    LEADER = [I, I, I]
    WAIT = [I, I, I]
    HOT = [I, I, I]

    # pub/sub listener
    # The scripts publish with SPUBLISH (sharded pub/sub): a classic SUBSCRIBE would hear nothing.
    sub.call("SSUBSCRIBE", "chan")

    def notice():
        m = sub.read()
        return m[2] if isinstance(m, list) and m[0] == b"smessage" else m

    def drain():
        c.call("SPUBLISH", "chan", "--marker--")
        while notice() != b"--marker--":
            pass

    def new_entry(e, value=b"v", fresh=1000, stale=5000, cms=10):
        """Fresh entry committed through the leader path; returns the commit reply."""
        c.call("DEL", *keys(e))
        r = gol(e)
        assert r[0] == b"leader", r
        r = commit(e, r[1], value=value, fresh=fresh, stale=stale, cms=cms)
        assert r[0] == b"ok", r
        drain()
        return r

    # ---------------------------------------------------------------- leader / wait
    r = gol("e1")
    shape(r, "leader", LEADER)
    check(r[1] == 1 and r[2] == 5000, "first leader gets token 1, lock ttl 5000")
    check(c.call("GET", L("e1")) == b"1", "lock holds token 1")
    check(0 < c.call("PTTL", L("e1")) <= 5000, "lock has PX lock TTL")
    check(c.call("PTTL", F("e1")) > 86000000, "fence counter has retention TTL")
    check(abs(r[3] - srv_now()) < 1000, "now is server TIME in ms")
    r = gol("e1")
    shape(r, "wait", WAIT)
    check(r[1] == 1 and 0 < r[2] <= 5000, "wait shows holder token 1 and lock pttl")
    check(c.call("GET", F("e1")) == b"1", "wait did not burn a token")
    check(c.call("EXISTS", V("e1"), H("e1")) == 0, "get_or_lock writes neither entry nor hot counter")

    # ---------------------------------------------------------------- commit accepted
    val = b"\x00bin\r\nary\x00\xff|done|\nsc2 1 2 1 3 4\n"
    r = commit("e1", 1, value=val, fresh=1000, stale=5000, cms=42)
    shape(r, "ok", [I, I, I, I])
    fu, su, now, rel = r[1:]
    check(fu == now + 1000 and su == fu + 5000 and rel == 1, "commit fu/su/released %r" % r)
    check(notice() == b"done|e1|1", "done notice published")
    check(c.call("EXISTS", L("e1")) == 0, "lock released by commit")
    check(c.call("TYPE", V("e1")) == ("status", b"string"), "entry is a string")
    check(pexp("e1") == su, "PXAT: PEXPIRETIME entry == su (%r vs %r)" % (pexp("e1"), su))
    blob = c.call("GET", V("e1"))
    check(blob == b"sc2 %d %d %d 42 1\n" % (fu, su, now) + val, "blob = exact header (fu su ct cms fence) + value bytes (%r)" % blob[:40])
    check(c.call("PTTL", F("e1")) >= (su - now) + RET - 1000, "fence counter outlives entry")
    r = gol("e1")
    shape(r, "fresh", FRESH)
    check(r[1] == blob, "fresh reply carries the whole blob, binary value intact")
    check(parse_blob(r[1]) == (fu, su, now, 42, 1, val), "client-side header parse of fresh blob")
    check(abs(r[2] - su) <= 1 and abs(r[3] - srv_now()) < 1000, "fresh su = now + PTTL = commit su (%r vs %r)" % (r[2], su))

    # ---------------------------------------------------------------- jitter
    r = commit("e1", 1, fresh=1000, stale=0, jitter="0.5", jr="0.999999")
    check(r[0] == b"ok" and r[1] - r[3] == 500 and r[2] == r[1], "jitter shortens fresh (0.5*~1 -> 500ms), stale 0 => su == fu")
    check(pexp("e1") == r[2], "stale 0: PXAT == fu")
    check(notice() == b"done|e1|1", "done notice for same-token recommit")
    r = commit("e1", 1, fresh=1, stale=10, jitter="0.5", jr="0.9")
    check(r[1] - r[3] == 1, "fresh' never below 1ms")
    drain()

    # ---------------------------------------------------------------- zombie rejected
    c.call("DEL", *keys("e2"))
    r1 = gol("e2", lock_ttl=50)
    check(r1[0] == b"leader" and r1[1] == 1, "e2 leader token 1")
    time.sleep(0.08)  # token 1's lock expires: it becomes a zombie
    r2 = gol("e2")
    check(r2[0] == b"leader" and r2[1] == 2, "e2 second leader token 2")
    r = commit("e2", 2, value=b"new")
    check(r[0] == b"ok" and r[4] == 1, "token 2 commit ok")
    check(notice() == b"done|e2|2", "done 2")
    r = commit("e2", 1, value=b"old")
    shape(r, "rejected", [B, I, I])
    check(r[1] == b"stale_token" and r[2] == 2, "zombie token 1 rejected stale_token, fence 2")
    check(parse_blob(c.call("GET", V("e2")))[4:] == (2, b"new"), "zombie did not overwrite")
    r = commit("e2", 99, value=b"forged")
    check(r[0] == b"rejected" and r[1] == b"unknown_token" and r[2] == 2, "never-issued token 99 rejected unknown_token")
    r = commit("e2", 2, value=b"new2")
    check(r[0] == b"ok" and r[4] == 0, "same token re-commit (retry) accepted, released=0")
    check(parse_blob(c.call("GET", V("e2")))[4:] == (2, b"new2"), "retry wrote its value")
    check(notice() == b"done|e2|2", "retry publishes done again")
    # zombie holding the lock (forged state) gets its lock deleted on rejection
    c.call("SET", L("e2"), "1", "PX", 10000)
    r = commit("e2", 1)
    check(r[0] == b"rejected" and c.call("EXISTS", L("e2")) == 0, "rejected commit still deletes own lock")
    c.call("SET", L("e2"), "7", "PX", 10000)
    r = commit("e2", 1)
    check(c.call("GET", L("e2")) == b"7", "rejected commit does not delete another's lock")
    c.call("DEL", L("e2"))

    # fence counter evicted while the entry survived
    c.call("DEL", F("e2"))
    b2 = c.call("GET", V("e2"))
    fu2, su2, ct2, cms2, fence2, v2 = parse_blob(b2)
    c.call("SET", V("e2"), b"sc2 %d %d %d %d %d\n" % (ct2, su2, ct2, cms2, fence2) + v2, "KEEPTTL")  # force stale
    r = gol("e2")
    shape(r, "stale", STALE)
    check(r[4] == 1 and r[5] == 3 and r[6] == 5000, "after counter loss, token = entry.fence+1 = 3 (%r)" % r[2:])
    check(c.call("GET", F("e2")) == b"3", "counter re-seeded to 3")
    check(c.call("PTTL", F("e2")) > 86000000, "re-seeded counter has TTL")
    r = commit("e2", 3)
    check(r[0] == b"ok" and r[4] == 1, "token 3 commits")
    drain()
    r = commit("e2", 2)
    check(r[0] == b"rejected" and r[1] == b"stale_token" and r[2] == 3, "old token 2 fenced after counter loss")
    r = gol("e2")
    check(r[0] == b"fresh" and parse_blob(r[1])[4] == 3, "entry keeps fence 3")

    # ---------------------------------------------------------------- stale lease won / lost
    new_entry("e3", value=b"s", fresh=60, stale=10000)
    su3 = pexp("e3")
    time.sleep(0.1)
    r = gol("e3")
    shape(r, "stale", STALE)
    check(parse_blob(r[1])[5] == b"s" and r[4] == 1 and r[5] == 2 and r[6] == 5000, "stale lease won with token 2")
    check(r[2] == su3 == parse_blob(r[1])[1] and r[3] >= parse_blob(r[1])[0], "stale: su from the header (== key expiry after commit), now >= fu")
    check(c.call("GET", L("e3")) == b"2" and c.call("PTTL", F("e3")) >= (su3 - r[3]) + RET - 1000,
          "stale lease: lock holds token 2, counter kept past su")
    r = gol("e3")
    shape(r, "stale", STALE)
    check(r[4] == 0 and r[5] == 0 and 0 < r[6] <= 5000, "stale lease lost: lease 0 token 0 pttl>0")
    check(c.call("GET", F("e3")) == b"2", "lost lease burned no token")
    # force flag: a fresh entry is treated as stale (lease), a held lock means stale without lease
    new_entry("ef", value=b"cached", fresh=60000)
    r = gol("ef")
    shape(r, "fresh", FRESH)
    r = gol_force("ef")
    shape(r, "stale", STALE)
    check(r[4] == 1 and r[5] > 0 and c.call("GET", L("ef")) == str(r[5]).encode(), "force on a fresh entry wins the refresh lease")
    r2 = gol_force("ef")
    shape(r2, "stale", STALE)
    check(r2[4] == 0 and r2[5] == 0 and r2[6] > 0, "second forced caller sees the lease held")
    r3 = gol("ef")
    shape(r3, "fresh", FRESH)
    check(r3[1].endswith(b"\ncached") and c.call("GET", L("ef")) == str(r[5]).encode(),
          "unforced callers still get the fresh value meanwhile, and the forced lease stays held")
    r4 = c.call_err("EVALSHA", sha["get_or_lock"], 3, V("ef"), L("ef"), F("ef"), 5000, RET, "0", "0.5", "2")
    check(isinstance(r4, RedisErr) and "ARGV[5]" in str(r4), "bad force flag rejected")
    c.call("DEL", *keys("ef"))

    # release: non-owner refused, owner ok
    r = release("e3", 1)
    shape(r, "not_owner", [B])
    check(r[1] == b"2", "non-owner release refused, shows holder")
    check(c.call("GET", L("e3")) == b"2", "lock untouched by non-owner")
    r = release("e3", 2, msg="boom|x\r\ny")
    check(r == [b"released", 1], "owner release ok")
    n = notice()
    check(n == b"fail|e3|2|boom|x\r\ny", "fail notice %r" % n)
    r = release("e3", 2)
    check(r == [b"not_owner", b""], "release of free lock -> not_owner ''")
    r = gol("e3")
    check(r[0] == b"stale" and r[4] == 1 and r[5] == 3, "lease retaken with token 3")
    r = release("e3", 3, pub="0")
    check(r == [b"released", 1], "silent release")
    c.call("SPUBLISH", "chan", "marker")
    check(notice() == b"marker", "silent release published nothing")
    check(c.call("EXISTS", V("e3")) == 1, "release does not touch the entry")

    # release with a fail-safe hold keeps the lock (same token) for the hold
    c.call("SET", L("e3"), "4", "PX", "60000")
    r = c.call("EVALSHA", sha["release"], 2, V("e3"), L("e3"), "4", "chan", "e3", "down", "0", "250")
    check(r == [b"released", 1], "release with hold -> released")
    check(c.call("GET", L("e3")) == b"4" and 0 < c.call("PTTL", L("e3")) <= 250,
          "hold keeps the lock with its token for the hold ms")
    r = c.call_err("EVALSHA", sha["release"], 2, V("e3"), L("e3"), "4", "chan", "e3", "", "0", "-1")
    check(isinstance(r, RedisErr) and "ARGV[6]" in str(r), "bad hold rejected")
    c.call("DEL", L("e3"))
    # the hold never outlasts the stale copy: cut to su - now, and with nothing servable the lock is deleted
    c.call("SET", L("e3"), "5", "PX", "60000")
    su3h = parse_blob(c.call("GET", V("e3")))[1]
    r = release("e3", 5, pub="0", hold=3600000)
    check(r == [b"released", 1] and 0 < c.call("PTTL", L("e3")) <= su3h - srv_now() + 5,
          "hold of 1 h cut to the entry's remaining servable time (%r ms)" % c.call("PTTL", L("e3")))
    c.call("DEL", L("e3"))
    new_entry("e3x", value=b"s", fresh=20, stale=20)
    time.sleep(0.06)  # past su: nothing left to serve
    c.call("SET", L("e3x"), "9", "PX", "60000")
    r = release("e3x", 9, pub="0", hold=5000)
    check(r == [b"released", 1] and c.call("EXISTS", L("e3x")) == 0, "hold with no servable copy left: lock deleted at once")
    c.call("SET", L("e3x"), "10", "PX", "60000")
    r = release("e3x", 10, msg="bad request", pub="2")
    check(r == [b"released", 1] and notice() == b"fatal|e3x|10|bad request", "publish flag 2 -> fatal notice")
    c.call("DEL", *keys("e3x"))

    # ---------------------------------------------------------------- XFetch early
    new_entry("e4", value=b"x", fresh=10000, cms=1000)
    r = gol("e4", beta="1", rnd="0.5")
    check(r[0] == b"fresh", "XFetch not triggered far from expiry")
    r = gol("e4", beta="100", rnd="0.01")
    shape(r, "early", EARLY)
    check(r[4] == 2 and parse_blob(r[1])[5] == b"x", "XFetch early lease won token 2")
    check(c.call("GET", L("e4")) == b"2" and 0 < c.call("PTTL", L("e4")) <= 5000, "early: lock holds token 2 for lock TTL")
    r = gol("e4", beta="100", rnd="0.01")
    shape(r, "fresh", FRESH)
    check(c.call("GET", F("e4")) == b"2", "XFetch with lock held -> plain fresh, no token burned")
    r = gol("e4", beta="0", rnd="1")
    check(r[0] == b"fresh", "beta 0 = off")
    c.call("DEL", L("e4"))
    # cms = 0 in the header disables XFetch
    new_entry("e4b", value=b"x", fresh=10000, cms=0)
    r = gol("e4b", beta="1000000", rnd="0.0001")
    check(r[0] == b"fresh" and c.call("EXISTS", L("e4b")) == 0, "cms 0 => XFetch never fires")

    # ---------------------------------------------------------------- hot key (hot_touch)
    new_entry("e5", fresh=2000, stale=1000)
    blob5 = c.call("GET", V("e5"))
    su5 = pexp("e5")
    for i in range(4):
        r = hot("e5", thr=5, win=10000, hot_ttl=60000)
        shape(r, "cold", HOT)
        check(r[1] == 0 and abs(r[2] - su5) <= 1 and pexp("e5") == su5,
              "below threshold: cold, not slid, su unchanged (hit %d)" % (i + 1))
    r = hot("e5", thr=5, win=10000, hot_ttl=60000)
    shape(r, "hot", HOT)
    check(r[1] == 1, "at threshold: hot and slid")
    check(r[2] == r[3] + 60000, "su slid to now + hot TTL")
    check(pexp("e5") == r[2], "PEXPIREAT follows slid su")
    check(c.call("GET", V("e5")) == blob5, "header bytes identical after slide (fu unchanged)")
    check(c.call("PTTL", F("e5")) >= 60000 + RET - 1000, "fence counter extended past slid su")
    check(c.call("PTTL", H("e5")) > 19000, "hot hash PEXPIRE = 2*window")
    check(c.call("HMGET", H("e5"), "c", "p") == [b"5", b"0"], "hot counter c=5 p=0")
    slid5 = r[2]
    r = hot("e5", thr=5, win=10000, hot_ttl=60000)
    check(r[0] == b"hot" and r[1] == 0 and pexp("e5") == slid5,
          "a touch right after a slide does not move the expiry again (hysteresis: no change for trackers)")
    r = hot("e5", thr=5, win=10000, hot_ttl=10)
    check(r[0] == b"hot" and r[1] == 0 and abs(r[2] - slid5) <= 1 and pexp("e5") == slid5,
          "smaller hot TTL never shortens su")
    r = hot("e5", thr=5, win=10000, hot_ttl=0)
    check(r[0] == b"hot" and r[1] == 0 and pexp("e5") == slid5, "hot TTL 0 never slides")
    r = gol("e5")
    check(r[0] == b"fresh" and r[1] == blob5 and r[2] == su5 == parse_blob(blob5)[1],
          "get_or_lock reports the header's servable-until, not the slid retention")
    check(c.call("HGET", H("e5"), "c") == b"8", "get_or_lock does not count hits")
    r = commit("e5", parse_blob(blob5)[4], fresh=2000, stale=1000)
    check(r[0] == b"ok" and pexp("e5") == r[2], "accepted commit sets su = fu + stale again (PXAT)")
    drain()
    r = hot("e5", thr=5, win=10000, hot_ttl=60000)
    check(r[0] == b"hot" and r[1] == 1 and pexp("e5") == r[2] == r[3] + 60000, "next hot touch slides again")

    # batches: n > 1
    new_entry("e13", fresh=5000, stale=1000)
    blob13 = c.call("GET", V("e13"))
    r = hot("e13", n=4, thr=5, win=10000)
    check(r[0] == b"cold" and r[1] == 0 and c.call("HGET", H("e13"), "c") == b"4", "batch of 4 below threshold 5: cold, c=4")
    r = hot("e13", n=3, thr=5, win=10000)
    check(r[0] == b"hot" and r[1] == 1 and c.call("HGET", H("e13"), "c") == b"7", "second batch of 3: hot, slid, c=7")
    c.call("DEL", H("e13"))
    r = hot("e13", n=5, thr=5, win=10000, hot_ttl=120000)
    check(r[0] == b"hot" and r[1] == 1 and r[2] == r[3] + 120000, "one batch of n = threshold promotes at once")
    check(c.call("GET", V("e13")) == blob13, "batched slide leaves the header untouched")
    r = hot("e13", n=999999999999999, thr=5, win=10000)
    check(r[0] == b"hot" and c.call("HGET", H("e13"), "c") == b"1000000000000000", "huge batch: count capped, exact")

    # stale hot entry also slides (and get_or_lock still grants the lease)
    new_entry("e12", fresh=30, stale=10000)
    blob12 = c.call("GET", V("e12"))
    time.sleep(0.06)
    r = hot("e12", thr=1, win=10000, hot_ttl=60000)
    check(r[0] == b"hot" and r[1] == 1 and r[2] == r[3] + 60000, "stale hot entry: retention slid")
    r = gol("e12")
    shape(r, "stale", STALE)
    check(r[1] == blob12 and r[2] == parse_blob(blob12)[1] < pexp("e12") and r[4] == 1,
          "stale hot entry: still stale (fu unchanged), servable-until from the header, retention slid, lease won")
    c.call("DEL", L("e12"))
    # retention past su never makes an entry servable: a hot entry past fresh + stale is missing
    new_entry("e12b", fresh=20, stale=20)
    hot("e12b", thr=1, win=10000, hot_ttl=60000)
    time.sleep(0.06)
    check(c.call("PTTL", V("e12b")) > 50000, "hot entry retained for the hot TTL")
    r = gol("e12b")
    check(r[0] == b"leader" and r[1] == 2, "hot entry past fresh + stale: leader (not stale), token above its fence (%r)" % r)
    c.call("DEL", *keys("e12b"))

    # missing entry / entry without expiry / no fence counter
    c.call("DEL", *keys("e14"))
    r = hot("e14", n=10, thr=1)
    shape(r, "hot", HOT)
    check(r[1] == 0 and r[2] == 0, "hot_touch on missing entry: slid 0, su 0")
    check(c.call("EXISTS", V("e14"), F("e14")) == 0 and c.call("HGET", H("e14"), "c") == b"10",
          "missing entry: counted, nothing else created")
    c.call("SET", V("e14"), b"sc2 1 1 1 1 1\nx")
    r = hot("e14", n=1, thr=1)
    check(r == [b"hot", 0, 0, r[3]] and c.call("PTTL", V("e14")) == -1, "entry without expiry: not slid, su 0")
    c.call("PEXPIRE", V("e14"), 1000)
    r = hot("e14", n=1, thr=1, hot_ttl=60000)
    check(r[1] == 1 and c.call("EXISTS", F("e14")) == 0, "slide never creates a missing fence counter")
    c.call("SET", F("e14"), "3")
    r = hot("e14", n=1, thr=1, hot_ttl=120000)
    check(r[1] == 1 and c.call("PTTL", F("e14")) >= 120000 + RET - 1000, "counter without TTL gets retention on slide")

    # window roll-over and decay: small window
    c.call("DEL", *keys("e6"))
    new_entry("e6", fresh=5000, stale=1000)
    W = 200
    for _ in range(5):
        r = hot("e6", thr=5, win=W, hot_ttl=60000)
    check(r[0] == b"hot", "e6 hot after 5 hits")
    ws_before = int(c.call("HGET", H("e6"), "ws"))
    time.sleep(W * 1.2 / 1000)  # next window: previous bucket carries over partially
    r = hot("e6", thr=4, win=W, hot_ttl=60000)
    h = c.call("HMGET", H("e6"), "ws", "c", "p")
    check(int(h[2]) == 5 and int(h[1]) == 1 and int(h[0]) == ws_before + W,
          "one window later: p=c(5), c=1, ws advanced by exactly one window (%r)" % h)
    check(r[0] == b"hot", "hot at threshold 4 from weighted previous bucket (estimate ~1+5*0.75)")
    time.sleep(W * 2.5 / 1000)  # two+ windows idle: everything decays
    r = hot("e6", thr=5, win=W, hot_ttl=60000)
    h = c.call("HMGET", H("e6"), "c", "p")
    check(h == [b"1", b"0"] and r[0] == b"cold", "after >= 2 windows: p=0, c=1, cold (%r)" % h)
    # batched roll-over: a batch lands in the new window, the old one decays linearly
    c.call("DEL", H("e6"))
    hot("e6", n=8, thr=100, win=W)
    time.sleep(W * 1.1 / 1000)
    r = hot("e6", n=2, thr=100, win=W)
    check(c.call("HMGET", H("e6"), "c", "p") == [b"2", b"8"] and r[0] == b"cold", "batched roll-over: c=2 p=8")
    # clock went backwards: ws in the future is re-anchored to now
    c.call("HSET", H("e6"), "ws", str(srv_now() + 10000000), "c", "3", "p", "0")
    r = hot("e6", n=1, thr=4, win=10000)
    ws = int(c.call("HGET", H("e6"), "ws"))
    check(r[0] == b"hot" and abs(ws - r[3]) <= 1 and c.call("HGET", H("e6"), "c") == b"4",
          "future ws re-anchored to now, counts kept")

    # ---------------------------------------------------------------- invalidate
    commit("e1", int(c.call("GET", F("e1"))))
    drain()
    r = inval("e1")
    shape(r, "invalidated", [I])
    check(r[1] == 1 and c.call("EXISTS", V("e1")) == 0, "entry deleted")
    check(notice() == b"inval|e1", "inval notice")
    r = inval("e1")
    check(r == [b"invalidated", 0], "invalidate missing -> 0")
    check(notice() == b"inval|e1", "inval notice even when nothing was deleted")
    check(c.call("EXISTS", F("e1")) == 1, "fence counter kept after invalidate")
    # invalidation keeps the lock, later tokens still increase
    c.call("DEL", *keys("e8"))
    r = gol("e8")
    inval("e8")
    drain()
    check(c.call("GET", L("e8")) == b"1", "invalidate keeps in-flight lock")
    r = commit("e8", 1)
    check(r[0] == b"ok", "in-flight commit after invalidate accepted (documented)")
    drain()
    r = gol("e1")
    check(r[0] == b"leader" and r[1] > 1, "after invalidate new token continues the sequence")
    c.call("DEL", L("e1"))

    # ---------------------------------------------------------------- stale expiry to missing
    new_entry("e9", fresh=30, stale=30)
    time.sleep(0.1)
    r = gol("e9")
    check(r[0] == b"leader" and r[1] == 2, "after su passes: leader with token 2")
    c.call("DEL", L("e9"))

    # ---------------------------------------------------------------- corrupt entries
    t0 = srv_now()
    corrupt_cases = [
        b"", b"garbage", b"sc1 1 2 3 4\n", b"sc2 1 2 3\n", b"sc2 2 3 1 3 4", b"sc2 2 3 1 3 4 \n",
        b"sc2 -1 2 1 3 4\n", b"sc2  2 3 1 3 4\n", b" sc2 2 3 1 3 4\n", b"SC2 2 3 1 3 4\n", b"sc2 2 3 1 3 4\r\n",
        b"sc2 2 3 1 3 x\n", b"sc2 2 3 1 3 99999999999999999\n", b"sc2 %d %d 2 3 4\n" % (MAX_EXACT + 1, MAX_EXACT + 1),
        # ordering and span: ct <= fu <= su, su - ct <= ~10 years, fence < 10^15 - 1
        b"sc2 %d %d %d 0 1\n" % (t0 + 9000, t0 + 8000, t0),       # fu > su
        b"sc2 %d %d %d 0 1\n" % (t0, t0 + 8000, t0 + 1000),       # ct > fu
        b"sc2 9999999999999 9999999999999 %d 0 1\n" % t0,         # an entry "fresh" for 270 years
        b"sc2 %d %d %d 0 999999999999999\n" % (t0 + 9000, t0 + 9000, t0),
    ]
    for cb in corrupt_cases:
        c.call("DEL", *keys("ec"))
        c.call("SET", V("ec"), cb + b"tail", "PX", 60000)
        r = gol("ec")
        shape(r, "corrupt", [B, B])
        check(r[1] == b"bad header" and r[2] == b"value" and c.call("EXISTS", L("ec"), F("ec"), H("ec")) == 0
              and c.call("GET", V("ec")) == cb + b"tail",
              "corrupt header %r -> corrupt value, nothing touched" % cb)
    c.call("DEL", *keys("ec"))
    c.call("SET", V("ec"), b"sc2 %d %d %d 1 1\nv" % (MAX_EXACT, MAX_EXACT, MAX_EXACT), "PX", 60000)
    r = gol("ec")
    check(r[0] == b"fresh", "header fields = 2^53-1 are still valid")
    c.call("DEL", *keys("ec"))
    c.call("SET", V("ec"), b"sc2 %d %d %d 1 1\nv" % (srv_now() + 60000, srv_now() + 60000, srv_now()))
    r = gol("ec")
    check(r == [b"corrupt", b"no expiry", b"value"] and c.call("EXISTS", L("ec"), F("ec")) == 0,
          "key without expiry -> corrupt 'no expiry', nothing touched")
    c.call("SET", V("ec"), b"sc2 1 1 1 1 1\nv")
    r = gol("ec")
    check(r == [b"corrupt", b"no expiry", b"value"] and c.call("EXISTS", L("ec")) == 0, "stale-looking key without expiry -> corrupt")
    # commit over a corrupt entry: fence counts as 0, entry is overwritten
    c.call("DEL", *keys("ec"))
    c.call("SET", V("ec"), b"sc2 1 2 1 3 9", "PX", 60000)  # fence 9 but no "\n": invalid
    c.call("SET", F("ec"), "2")
    r = commit("ec", 1, value=b"fixed")
    check(r[0] == b"ok" and parse_blob(c.call("GET", V("ec")))[4:] == (1, b"fixed") and pexp("ec") == r[2],
          "commit overwrites a corrupt entry (fence 0)")
    drain()
    # commit reads the fence from a valid header even when the value is large
    big = bytes(range(256)) * 4096  # 1 MiB
    c.call("SET", V("ec"), b"sc2 1 2 1 3 7\n" + big, "PX", 60000)
    r = commit("ec", 2)
    check(r == [b"rejected", b"stale_token", 7, r[3]], "commit reads fence 7 via GETRANGE header")
    c.call("SET", F("ec"), "8")
    r = commit("ec", 8, value=big)
    check(r[0] == b"ok", "commit with 1 MiB value")
    drain()
    r = gol("ec")
    check(r[0] == b"fresh" and parse_blob(r[1])[4:] == (8, big), "1 MiB value round-trips exactly")

    # ---------------------------------------------------------------- fence tokens stay exact
    # A counter near 2^53, at 10^15 - 1, or not an integer is corrupt: the next token is reset
    # above the entry's committed fence (never an uncommittable or repeated token).
    for bad_counter in [b"9007199254740990", b"9007199254740992", b"999999999999999", b"1e3", b"-4", b"x", b"1.5"]:
        new_entry("ef2", fresh=20, stale=60000)
        time.sleep(0.03)
        fence_before = parse_blob(c.call("GET", V("ef2")))[4]
        c.call("SET", F("ef2"), bad_counter, "KEEPTTL")
        r = gol("ef2")
        check(r[0] == b"stale" and r[4] == 1 and r[5] == fence_before + 1,
              "corrupt counter %r: token reset to fence + 1 = %d (%r)" % (bad_counter, fence_before + 1, r[4:6]))
        r2 = commit("ef2", r[5])
        check(r2[0] == b"ok", "the reset token commits (%r)" % r2)
        drain()
        r3 = gol_force("ef2")
        check(r3[0] == b"stale" and r3[5] == r[5] + 1, "next token continues the sequence (%r)" % r3[4:6])
        c.call("DEL", *keys("ef2"))
    # the largest counter that is still valid issues 10^15 - 1 ... no: 10^15 would be uncommittable
    c.call("DEL", *keys("ef3"))
    c.call("SET", F("ef3"), "999999999999998")
    r = gol("ef3")
    check(r[0] == b"leader" and r[1] == 999999999999999, "counter 10^15 - 2 issues 10^15 - 1 (15 digits)")
    r = commit("ef3", r[1])
    check(r[0] == b"ok", "token 10^15 - 1 commits")
    drain()
    c.call("DEL", *keys("ef3"))

    # ---------------------------------------------------------------- foreign types: say which key
    c.call("DEL", *keys("ew"))
    c.call("HSET", V("ew"), "val", "x", "fu", "1")
    c.call("SET", F("ew"), "4")
    r = gol("ew")
    check(r == [b"corrupt", b"value key holds a hash", b"value"], "get_or_lock on a hash entry -> corrupt value (%r)" % r)
    check(c.call("TYPE", V("ew")) == ("status", b"hash") and c.call("EXISTS", L("ew")) == 0
          and c.call("GET", F("ew")) == b"4", "get_or_lock on a foreign type wrote nothing")
    r = commit("ew", 4)
    check(r[0] == b"ok" and parse_blob(c.call("GET", V("ew")))[4] == 4, "commit overwrites a foreign-typed entry (fence 0)")
    drain()
    blob_ew = c.call("GET", V("ew"))
    c.call("HSET", L("ew"), "a", "b")
    r = gol_force("ew")
    check(r == [b"corrupt", b"lock key holds a hash", b"lock"] and c.call("GET", V("ew")) == blob_ew,
          "a hash in the lock key -> corrupt lock; the valid entry is untouched")
    r = commit("ew", 4)
    check(r[0] == b"ok" and r[4] == 0 and c.call("TYPE", L("ew")) == ("status", b"hash"), "commit with a foreign lock key: not owned, not touched")
    drain()
    r = release("ew", 4)
    check(r == [b"not_owner", b""], "release with a foreign lock key: not_owner")
    c.call("DEL", L("ew"))
    c.call("DEL", F("ew"))
    c.call("SADD", F("ew"), "x")
    r = gol_force("ew")
    check(r == [b"corrupt", b"fence key holds a set", b"fence"], "a set in the fence key -> corrupt fence")
    c.call("DEL", F("ew"))
    r = gol_force("ew")
    check(r[0] == b"stale" and r[5] == 5, "after the fence key is repaired, tokens resume above the entry's fence 4 (%r)" % r)
    c.call("SET", H("ew"), "x")
    r = c.call_err("EVALSHA", sha["hot_touch"], 3, V("ew"), F("ew"), H("ew"), 1, 1, 1000, 1000, RET)
    check(isinstance(r, RedisErr) and "WRONGTYPE" in str(r), "hot_touch with a non-hash counter -> WRONGTYPE")
    c.call("DEL", *keys("ew"))

    # ---------------------------------------------------------------- hand-off (computed, not stored)
    c.call("DEL", *keys("eh"))
    r = gol("eh")
    tok = r[1]
    r = handoff("eh", tok, value=b"\x00paid|for\n", reason="finish_reason length")
    check(r == [b"delivered", 1], "owner hands off")
    check(notice() == b"deliver|eh|%d|finish_reason length" % tok, "deliver notice carries token and reason")
    check(c.call("GET", D("eh")) == b"hd1 %d\n\x00paid|for\n" % tok and 0 < c.call("PTTL", D("eh")) <= 5000,
          "hand-off copy with token, binary value, PX lifetime")
    check(c.call("EXISTS", V("eh"), L("eh")) == 0, "nothing stored, lock released")
    r = handoff("eh", tok)
    check(r == [b"not_owner", b""], "a second hand-off without the lock writes nothing")
    c.call("SET", L("eh"), "77", "PX", 5000)
    r = handoff("eh", tok)
    check(r == [b"not_owner", b"77"] and c.call("GET", L("eh")) == b"77", "hand-off never releases another's lock")
    for idx, v in [(0, "0"), (0, "x"), (2, "0"), (2, "-1"), (3, ""), (4, ""), (4, "a|b")]:
        a2 = ["1", "v", "1000", "chan", "eh", "r"]
        a2[idx] = v
        r = c.call_err("EVALSHA", sha["handoff"], 3, V("eh"), L("eh"), D("eh"), *a2)
        check(isinstance(r, RedisErr) and "ERR stampede: handoff: ARGV[%d]" % (idx + 1) in str(r),
              "handoff rejects ARGV[%d]=%r -> %r" % (idx + 1, v, r))
    c.call("DEL", *keys("eh"))

    # ---------------------------------------------------------------- bad ARGV / KEYS
    k4 = keys("bad")
    gargs = ["5000", "86400000", "0", "0.5"]
    bad_cases = [
        (0, "0"), (0, "-5"), (0, "1.5"), (0, "abc"), (0, ""), (0, "1234567890123456"),
        (1, "0"), (1, "x"), (2, "-1"), (2, "nan"), (2, "inf"), (2, "x"),
        (3, "0"), (3, "1.5"), (3, "x"), (3, "-0.5"),
    ]
    for idx, v in bad_cases:
        a = list(gargs)
        a[idx] = v
        r = c.call_err("EVALSHA", sha["get_or_lock"], 3, *k4[:3], *a)
        check(isinstance(r, RedisErr) and "ERR stampede: get_or_lock: ARGV[%d]" % (idx + 1) in str(r),
              "get_or_lock rejects ARGV[%d]=%r -> %r" % (idx + 1, v, r))
    r = c.call_err("EVALSHA", sha["get_or_lock"], 4, *k4, *gargs)
    check(isinstance(r, RedisErr) and "expected 3 KEYS" in str(r), "get_or_lock wrong KEYS count")
    r = c.call_err("EVALSHA", sha["get_or_lock"], 3, *k4[:3], *gargs[:3])
    check(isinstance(r, RedisErr) and "expected 4 or 5 ARGV" in str(r), "get_or_lock too few ARGV")
    r = c.call_err("EVALSHA", sha["get_or_lock"], 3, *k4[:3], *gargs, "0", "1")
    check(isinstance(r, RedisErr) and "expected 4 or 5 ARGV" in str(r), "get_or_lock too many ARGV")
    check(c.call("EXISTS", *k4) == 0, "bad calls wrote nothing")

    cargs = ["1", "v", "1000", "1000", "0.1", "0.5", "5", "chan", "bad", "1000"]
    cbad = [(0, "0"), (0, "01"), (0, "x"), (0, "1234567890123456"), (2, "0"), (3, "-1"), (4, "0.6"),
            (4, "-0.1"), (5, "1"), (5, "-0.1"), (6, "-1"), (7, ""), (8, ""), (8, "a|b"), (9, "0")]
    for idx, v in cbad:
        a = list(cargs)
        a[idx] = v
        r = c.call_err("EVALSHA", sha["commit"], 3, *k4[:3], *a)
        check(isinstance(r, RedisErr) and "ERR stampede: commit: ARGV[%d]" % (idx + 1) in str(r),
              "commit rejects ARGV[%d]=%r -> %r" % (idx + 1, v, r))
    r = c.call_err("EVALSHA", sha["commit"], 3, *k4[:3], *cargs[:9])
    check(isinstance(r, RedisErr) and "expected 10 ARGV" in str(r), "commit too few ARGV")
    r = c.call_err("EVALSHA", sha["commit"], 3, *k4[:3], *cargs, "")
    check(isinstance(r, RedisErr) and "expected 10 ARGV" in str(r), "commit too many ARGV")
    r = c.call_err("EVALSHA", sha["commit"], 2, *k4[:2], *cargs)
    check(isinstance(r, RedisErr) and "expected 3 KEYS" in str(r), "commit wrong KEYS count")

    hargs = ["1", "10", "1000", "60000", "86400000"]
    hbad = [(0, "0"), (0, "-1"), (0, "1.5"), (0, ""), (1, "0"), (1, "x"), (2, "0"), (3, "-1"), (3, "x"),
            (4, "0"), (4, "1234567890123456")]
    for idx, v in hbad:
        a = list(hargs)
        a[idx] = v
        r = c.call_err("EVALSHA", sha["hot_touch"], 3, k4[0], k4[2], k4[3], *a)
        check(isinstance(r, RedisErr) and "ERR stampede: hot_touch: ARGV[%d]" % (idx + 1) in str(r),
              "hot_touch rejects ARGV[%d]=%r -> %r" % (idx + 1, v, r))
    r = c.call_err("EVALSHA", sha["hot_touch"], 4, *k4, *hargs)
    check(isinstance(r, RedisErr) and "expected 3 KEYS" in str(r), "hot_touch wrong KEYS count")
    r = c.call_err("EVALSHA", sha["hot_touch"], 3, k4[0], k4[2], k4[3], *hargs[:4])
    check(isinstance(r, RedisErr) and "expected 5 ARGV" in str(r), "hot_touch wrong ARGV count")

    rargs = ["1", "chan", "bad", "", "1"]
    for idx, v in [(0, "0"), (0, "abc"), (1, ""), (2, ""), (2, "x|y"), (4, "3")]:
        a = list(rargs)
        a[idx] = v
        r = c.call_err("EVALSHA", sha["release"], 2, *k4[:2], *a)
        check(isinstance(r, RedisErr) and "ERR stampede: release: ARGV[%d]" % (idx + 1) in str(r),
              "release rejects ARGV[%d]=%r -> %r" % (idx + 1, v, r))
    r = c.call_err("EVALSHA", sha["release"], 2, *k4[:2], *rargs[:4])
    check(isinstance(r, RedisErr) and "expected 5 or 6 ARGV" in str(r), "release wrong ARGV count")
    for a in (["", "bad"], ["chan", ""], ["chan", "a|b"]):
        r = c.call_err("EVALSHA", sha["invalidate_key"], 2, *k4[:2], *a)
        check(isinstance(r, RedisErr) and "ERR stampede: invalidate_key: ARGV" in str(r),
              "invalidate_key rejects %r -> %r" % (a, r))
    r = c.call_err("EVALSHA", sha["invalidate_key"], 3, *k4[:3], "chan", "bad")
    check(isinstance(r, RedisErr) and "expected 2 KEYS" in str(r), "invalidate_key wrong KEYS count")
    check(c.call("EXISTS", *k4) == 0, "bad calls wrote nothing (2)")

    # ---------------------------------------------------------------- empty value: no truncation
    cr = new_entry("e10", value=b"", cms=0)
    r = gol("e10")
    shape(r, "fresh", FRESH)
    check(r[1] == b"sc2 %d %d %d 0 1\n" % (cr[1], cr[2], cr[3]), "empty value: blob is exactly the header, array complete")
    check(parse_blob(r[1])[5] == b"", "empty value parses to b''")
    t10 = srv_now()
    c.call("SET", V("e10"), b"sc2 %d %d %d 0 0\n" % (t10 - 10, t10 + 60000, t10 - 10), "KEEPTTL")  # stale, fence 0, empty value
    r = gol("e10")
    shape(r, "stale", STALE)
    check(r[4] == 1 and r[5] == 2, "all-zero header + empty value: stale, lease, token > fence 0")
    r = gol("e10")
    shape(r, "stale", STALE)
    check(r[4:6] == [0, 0], "lost lease: zeros, not nil, array complete")
    c.call("DEL", *keys("e10"))
    c.call("SET", L("e10"), "held-by-someone", "PX", 3000)
    r = gol("e10")
    shape(r, "wait", WAIT)
    check(r[1] == 0, "non-decimal lock value -> holder token 0")

    # lock without TTL gets bounded
    c.call("DEL", *keys("e11"))
    c.call("SET", L("e11"), "5")
    r = gol("e11")
    check(r[0] == b"wait" and r[1] == 5 and r[2] == 5000 and 0 < c.call("PTTL", L("e11")) <= 5000,
          "lock without TTL gets bounded to lock TTL")

    # ---------------------------------------------------------------- semantic_register
    seqk, pend = "stampede:semseq:{ns1}", "stampede:sem:{ns1}:abc:pending"
    c.call("DEL", seqk, pend)
    vec = b"\x00\x00\x80\x3f" * 3  # three float32 1.0, binary-safe
    r = c.call("EVALSHA", sha["semantic_register"], 2, seqk, pend, "ctx1", vec, "some text", "sim:v1:k1", 7000)
    check(r == [b"registered", 1], "semantic_register: first registration gets 1 -> %r" % (r,))
    h = c.call("HGETALL", pend)
    fields = dict(zip(h[0::2], h[1::2]))
    check(fields == {b"ctx": b"ctx1", b"state": b"pending", b"vec": vec, b"text": b"some text", b"key": b"sim:v1:k1", b"seq": b"1"},
          "semantic_register: the pending document holds exactly its 6 fields, vector bytes intact")
    check(0 < c.call("PTTL", pend) <= 7000, "semantic_register: the document expires within its ttl")
    r = c.call("EVALSHA", sha["semantic_register"], 2, seqk, "stampede:sem:{ns1}:def:pending", "ctx1", vec, "", "sim:v1:k2", 1)
    check(r == [b"registered", 2], "semantic_register: numbers increase per namespace (empty text allowed)")
    for a in (["", vec, "t", "k", "10"], ["c", b"", "t", "k", "10"], ["c", b"abc", "t", "k", "10"], ["c", vec, "t", "", "10"],
              ["c", vec, "t", "k", "0"], ["c", vec, "t", "k", "-1"], ["c", vec, "t", "k", "1e3"]):
        r = c.call_err("EVALSHA", sha["semantic_register"], 2, seqk, pend, *a)
        check(isinstance(r, RedisErr) and "ERR stampede: semantic_register: ARGV" in str(r), "semantic_register rejects %r -> %r" % (a[1:] if a[0] else a, r))
    r = c.call_err("EVALSHA", sha["semantic_register"], 1, seqk, "c", vec, "t", "k", "10")
    check(isinstance(r, RedisErr) and "expected 2 KEYS" in str(r), "semantic_register wrong KEYS count")
    check(c.call("GET", seqk) == b"2", "semantic_register: a refused call takes no number")


if __name__ == "__main__":
    main()
