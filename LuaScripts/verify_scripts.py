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
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPTS = ["get_or_lock", "commit", "release", "invalidate_key"]


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
        # cluster mode needs a TCP port for the cluster bus; pick a free one
        ps = socket.socket()
        ps.bind(("127.0.0.1", 0))
        port = ps.getsockname()[1]
        ps.close()
        argv[1:3] = ["--port", str(port), "--bind", "127.0.0.1"]
        argv += ["--cluster-enabled", "yes", "--cluster-config-file",
                 os.path.join(d, "nodes.conf")]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(sock):
                break
            time.sleep(0.05)
        c = Conn(sock)
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


def run(c, sub):
    sha = {}
    for name in SCRIPTS:
        with open(os.path.join(HERE, name + ".lua"), "rb") as f:
            text = f.read()
        got = c.call("SCRIPT", "LOAD", text).decode()
        check(got == hashlib.sha1(text).hexdigest(), name + ": SCRIPT LOAD sha == sha1(file bytes)")
        sha[name] = got

    P = "sc:"

    def keys(e):
        return [P + "{" + e + "}:" + s for s in ("v", "l", "f", "h")]

    def gol(e, lock_ttl=5000, thr=1000, win=1000, hot_ttl=60000, ret=86400000,
            beta="0", rnd="0.5", count="1"):
        k = keys(e)
        return c.call("EVALSHA", sha["get_or_lock"], 4, *k, lock_ttl, thr, win, hot_ttl,
                      ret, beta, rnd, count)

    def commit(e, token, value=b"v", fresh=1000, stale=5000, jitter="0", jr="0",
               cms=10, fmt="f1", chan="chan", ret=86400000, tags=""):
        k = keys(e)[:3]
        return c.call("EVALSHA", sha["commit"], 3, *k, str(token), value, fresh, stale,
                      jitter, jr, cms, fmt, chan, e, ret, tags)

    def release(e, token, chan="chan", msg="", pub="1"):
        k = keys(e)[:2]
        return c.call("EVALSHA", sha["release"], 2, *k, str(token), chan, e, msg, pub)

    def inval(e, chan="chan"):
        k = keys(e)[:2]
        return c.call("EVALSHA", sha["invalidate_key"], 2, *k, chan, e)

    def shape(r, status, types):
        ok = (isinstance(r, list) and len(r) == len(types) + 1 and r[0] == status.encode()
              and all(isinstance(x, t) for x, t in zip(r[1:], types)))
        check(ok, "shape %s %r" % (status, r))

    I, B = int, bytes
    FRESH = [B, I, I, I, I, I, B, I, I]
    STALE = FRESH + [I, I, I]

    # pub/sub listener
    sub.call("SUBSCRIBE", "chan")

    def notice():
        m = sub.read()
        return m[2] if isinstance(m, list) and m[0] == b"message" else m

    # ---------------------------------------------------------------- leader / wait
    r = gol("e1")
    shape(r, "leader", [I, I, I])
    check(r[1] == 1 and r[2] == 5000, "first leader gets token 1, lock ttl 5000")
    check(c.call("GET", keys("e1")[1]) == b"1", "lock holds token 1")
    check(c.call("PTTL", keys("e1")[2]) > 86000000, "fence counter has retention TTL")
    t0 = c.call("TIME")
    now_srv = int(t0[0]) * 1000 + int(t0[1]) // 1000
    check(abs(r[3] - now_srv) < 1000, "now is server TIME in ms")
    r = gol("e1")
    shape(r, "wait", [I, I, I])
    check(r[1] == 1 and 0 < r[2] <= 5000, "wait shows holder token 1 and lock pttl")
    check(c.call("GET", keys("e1")[2]) == b"1", "wait did not burn a token")

    # ---------------------------------------------------------------- commit accepted
    val = b"\x00bin\r\nary\x00\xff|done|"
    r = commit("e1", 1, value=val, fresh=1000, stale=5000, cms=42, fmt="fmt\x00v2", tags="t1,t2")
    shape(r, "ok", [I, I, I, I])
    fu, su, now, rel = r[1:]
    check(fu == now + 1000 and su == fu + 5000 and rel == 1, "commit fu/su/released %r" % r)
    check(notice() == b"done|e1|1", "done notice published")
    check(c.call("EXISTS", keys("e1")[1]) == 0, "lock released by commit")
    pexp = c.call("PEXPIRETIME", keys("e1")[0])
    check(pexp == su, "PEXPIREAT entry == su (%r vs %r)" % (pexp, su))
    check(c.call("PTTL", keys("e1")[2]) >= (su - now) + 86400000 - 1000, "fence counter outlives entry")
    r = gol("e1")
    shape(r, "fresh", FRESH)
    check(r[1] == val, "binary value round-trips")
    check(r[2] == fu and r[3] == su and r[5] == 42 and r[6] == 1 and r[7] == b"fmt\x00v2", "fresh fields %r" % r)
    check(c.call("HGET", keys("e1")[0], "tags") == b"t1,t2", "tags stored")

    # ---------------------------------------------------------------- jitter
    r = commit("e1", 1, fresh=1000, stale=0, jitter="0.5", jr="0.999999")
    check(r[0] == b"ok" and r[1] - r[3] == 500 and r[2] == r[1], "jitter shortens fresh (0.5*~1 -> 500ms), stale 0 => su == fu")
    notice()
    r = commit("e1", 1, fresh=1, stale=10, jitter="0.5", jr="0.9")
    check(r[1] - r[3] == 1, "fresh' never below 1ms")
    notice()

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
    check(c.call("HGET", keys("e2")[0], "val") == b"new", "zombie did not overwrite")
    r = commit("e2", 99, value=b"forged")
    check(r[0] == b"rejected" and r[1] == b"unknown_token", "never-issued token 99 rejected unknown_token")
    r = commit("e2", 2, value=b"new2")
    check(r[0] == b"ok" and r[4] == 0, "same token re-commit (retry) accepted, released=0")
    notice()
    # zombie holding the lock (forged state) gets its lock deleted on rejection
    c.call("SET", keys("e2")[1], "1", "PX", 10000)
    r = commit("e2", 1)
    check(r[0] == b"rejected" and c.call("EXISTS", keys("e2")[1]) == 0, "rejected commit still deletes own lock")
    c.call("SET", keys("e2")[1], "7", "PX", 10000)
    r = commit("e2", 1)
    check(c.call("GET", keys("e2")[1]) == b"7", "rejected commit does not delete another's lock")
    c.call("DEL", keys("e2")[1])

    # fence counter evicted while the entry survived
    c.call("DEL", keys("e2")[2])
    c.call("HSET", keys("e2")[0], "fu", "0")  # force stale
    r = gol("e2")
    shape(r, "stale", STALE)
    check(r[10] == 1 and r[11] == 3, "after counter loss, token = entry.fence+1 = 3 (%r)" % r[10:])
    check(c.call("GET", keys("e2")[2]) == b"3", "counter re-seeded to 3")
    check(c.call("PTTL", keys("e2")[2]) > 86000000, "re-seeded counter has TTL")
    r = commit("e2", 3)
    check(r[0] == b"ok" and r[4] == 1, "token 3 commits")
    notice()
    r = commit("e2", 2)
    check(r[0] == b"rejected" and r[1] == b"stale_token" and r[2] == 3, "old token 2 fenced after counter loss")

    # ---------------------------------------------------------------- stale lease won / lost
    c.call("DEL", *keys("e3"))
    r = gol("e3")
    commit("e3", r[1], value=b"s", fresh=60, stale=10000)
    notice()
    time.sleep(0.1)
    r = gol("e3")
    shape(r, "stale", STALE)
    check(r[1] == b"s" and r[10] == 1 and r[11] == 2 and r[12] == 5000, "stale lease won with token 2")
    r = gol("e3")
    shape(r, "stale", STALE)
    check(r[10] == 0 and r[11] == 0 and 0 < r[12] <= 5000, "stale lease lost: lease 0 token 0 pttl>0")
    check(c.call("GET", keys("e3")[2]) == b"2", "lost lease burned no token")
    # release: non-owner refused, owner ok
    r = release("e3", 1)
    shape(r, "not_owner", [B])
    check(r[1] == b"2", "non-owner release refused, shows holder")
    check(c.call("GET", keys("e3")[1]) == b"2", "lock untouched by non-owner")
    r = release("e3", 2, msg="boom|x\r\ny")
    check(r == [b"released", 1], "owner release ok")
    n = notice()
    check(n == b"fail|e3|2|boom|x\r\ny", "fail notice %r" % n)
    r = release("e3", 2)
    check(r == [b"not_owner", b""], "release of free lock -> not_owner ''")
    r = gol("e3")
    check(r[0] == b"stale" and r[10] == 1 and r[11] == 3, "lease retaken with token 3")
    r = release("e3", 3, pub="0")
    check(r == [b"released", 1], "silent release")
    c.call("PUBLISH", "chan", "marker")
    check(notice() == b"marker", "silent release published nothing")

    # release with a fail-safe hold keeps the lock (same token) for the hold
    c.call("SET", keys("e3")[1], "4", "PX", "60000")
    r = c.call("EVALSHA", sha["release"], 2, *keys("e3")[:2], "4", "chan", "e3", "down", "0", "250")
    check(r == [b"released", 1], "release with hold -> released")
    check(c.call("GET", keys("e3")[1]) == b"4" and 0 < c.call("PTTL", keys("e3")[1]) <= 250,
          "hold keeps the lock with its token for the hold ms")
    r = c.call_err("EVALSHA", sha["release"], 2, *keys("e3")[:2], "4", "chan", "e3", "", "0", "-1")
    check(isinstance(r, RedisErr) and "ARGV[6]" in str(r), "bad hold rejected")
    c.call("DEL", keys("e3")[1])

    # ---------------------------------------------------------------- XFetch early
    c.call("DEL", *keys("e4"))
    r = gol("e4")
    commit("e4", r[1], value=b"x", fresh=10000, cms=1000)
    notice()
    r = gol("e4", beta="1", rnd="0.5")
    check(r[0] == b"fresh", "XFetch not triggered far from expiry")
    r = gol("e4", beta="100", rnd="0.01")
    shape(r, "early", STALE)
    check(r[10] == 1 and r[11] == 2 and r[12] == 5000, "XFetch early lease won token 2")
    r = gol("e4", beta="100", rnd="0.01")
    shape(r, "fresh", FRESH)
    check(c.call("GET", keys("e4")[2]) == b"2", "XFetch with lock held -> plain fresh, no token burned")
    r = gol("e4", beta="0", rnd="1")
    check(r[0] == b"fresh", "beta 0 = off")

    # ---------------------------------------------------------------- hot key
    c.call("DEL", *keys("e5"))
    r = gol("e5", count="0")
    commit("e5", r[1], fresh=2000, stale=1000)
    notice()
    base = c.call("HMGET", keys("e5")[0], "fu", "su")
    fu0, su0 = int(base[0]), int(base[1])
    for i in range(4):
        r = gol("e5", thr=5, win=10000, hot_ttl=60000)
        check(r[0] == b"fresh" and r[9] == 0 and r[3] == su0, "below threshold: not hot, su unchanged (hit %d)" % (i + 1))
    r = gol("e5", thr=5, win=10000, hot_ttl=60000)
    check(r[9] == 1, "at threshold: hot")
    check(r[2] == fu0, "fu unchanged when hot")
    check(r[3] == r[8] + 60000, "su slid to now + hot TTL")
    check(c.call("PEXPIRETIME", keys("e5")[0]) == r[3], "PEXPIREAT follows slid su")
    check(c.call("PTTL", keys("e5")[2]) >= 60000 + 86400000 - 1000, "fence counter extended past slid su")
    check(c.call("PTTL", keys("e5")[3]) > 19000, "hot hash PEXPIRE = 2*window")
    h = c.call("HMGET", keys("e5")[3], "c", "p")
    check(h == [b"5", b"0"], "hot counter c=5 p=0")
    r = gol("e5", thr=5, win=10000, hot_ttl=60000, count="0")
    check(r[9] == 1 and c.call("HGET", keys("e5")[3], "c") == b"5", "count=0: reports hot, does not count")
    r = gol("e5", thr=5, win=10000, hot_ttl=10)
    check(r[3] >= r[8] + 60000 - 100, "smaller hot TTL never shortens su")

    # a stale hot entry also slides (and still gets the lease)
    c.call("DEL", *keys("e12"))
    r = gol("e12", count="0")
    commit("e12", r[1], fresh=30, stale=10000)
    notice()
    time.sleep(0.06)
    r = gol("e12", thr=1, win=10000, hot_ttl=60000)
    shape(r, "stale", STALE)
    fu12 = int(c.call("HGET", keys("e12")[0], "fu"))
    check(r[9] == 1 and r[3] == r[8] + 60000 and r[2] == fu12 and r[10] == 1,
          "stale hot entry: su slid, fu unchanged, lease won (%r)" % r[2:])

    # window decay: small window
    c.call("DEL", *keys("e6"))
    r = gol("e6", count="0")
    commit("e6", r[1], fresh=5000, stale=1000)
    notice()
    W = 200
    for _ in range(5):
        r = gol("e6", thr=5, win=W, hot_ttl=60000)
    check(r[9] == 1, "e6 hot after 5 hits")
    ws_before = int(c.call("HGET", keys("e6")[3], "ws"))
    time.sleep(W * 1.2 / 1000)  # next window: previous bucket carries over partially
    r = gol("e6", thr=4, win=W, hot_ttl=60000)
    h = c.call("HMGET", keys("e6")[3], "ws", "c", "p")
    check(int(h[2]) == 5 and int(h[1]) == 1 and int(h[0]) == ws_before + W,
          "one window later: p=c(5), c=1, ws advanced by exactly one window (%r)" % h)
    check(r[9] == 1, "hot at threshold 4 from weighted previous bucket (estimate ~1+5*0.75)")
    time.sleep(W * 2.5 / 1000)  # two+ windows idle: everything decays
    r = gol("e6", thr=5, win=W, hot_ttl=60000)
    h = c.call("HMGET", keys("e6")[3], "c", "p")
    check(h == [b"1", b"0"] and r[9] == 0, "after >= 2 windows: p=0, c=1, not hot (%r)" % h)

    # miss path also counts
    c.call("DEL", *keys("e7"))
    gol("e7")
    gol("e7")
    check(c.call("HGET", keys("e7")[3], "c") == b"2", "misses are counted as demand")

    # ---------------------------------------------------------------- invalidate
    commit("e1", int(c.call("GET", keys("e1")[2])))
    notice()
    r = inval("e1")
    shape(r, "invalidated", [I])
    check(r[1] == 1 and c.call("EXISTS", keys("e1")[0]) == 0, "entry deleted")
    check(notice() == b"inval|e1", "inval notice")
    r = inval("e1")
    check(r == [b"invalidated", 0], "invalidate missing -> 0")
    notice()
    check(c.call("EXISTS", keys("e1")[2]) == 1, "fence counter kept after invalidate")
    # invalidation keeps the lock, later tokens still increase
    c.call("DEL", *keys("e8"))
    r = gol("e8")
    inval("e8")
    notice()
    check(c.call("GET", keys("e8")[1]) == b"1", "invalidate keeps in-flight lock")
    r = commit("e8", 1)
    check(r[0] == b"ok", "in-flight commit after invalidate accepted (documented)")
    notice()
    inval("e1")
    notice()
    r = gol("e1")
    check(r[0] == b"leader" and r[1] > 1, "after invalidate new token continues the sequence")

    # ---------------------------------------------------------------- stale expiry to missing
    c.call("DEL", *keys("e9"))
    r = gol("e9")
    commit("e9", r[1], fresh=30, stale=30)
    notice()
    time.sleep(0.1)
    r = gol("e9")
    check(r[0] == b"leader" and r[1] == 2, "after su passes: leader with token 2")
    # entry present but su already passed (forced) -> treated as missing
    c.call("DEL", keys("e9")[1])
    c.call("HSET", keys("e9")[0], "val", "z", "fu", "1", "su", "2", "fence", "2")
    r = gol("e9")
    check(r[0] == b"leader" and r[1] == 3, "now >= su treated as missing, token > fence")

    # ---------------------------------------------------------------- bad ARGV / KEYS
    k4 = keys("bad")
    base_args = ["5000", "10", "1000", "60000", "86400000", "0", "0.5", "1"]
    bad_cases = [
        (0, "0"), (0, "-5"), (0, "1.5"), (0, "abc"), (0, ""), (0, "1234567890123456"),
        (1, "0"), (2, "0"), (3, "-1"), (4, "0"), (5, "-1"), (5, "nan"), (5, "inf"),
        (6, "0"), (6, "1.5"), (6, "x"), (7, "2"), (7, ""),
    ]
    for idx, v in bad_cases:
        a = list(base_args)
        a[idx] = v
        r = c.call_err("EVALSHA", sha["get_or_lock"], 4, *k4, *a)
        check(isinstance(r, RedisErr) and "ERR stampede: get_or_lock: ARGV[%d]" % (idx + 1) in str(r),
              "get_or_lock rejects ARGV[%d]=%r -> %r" % (idx + 1, v, r))
    r = c.call_err("EVALSHA", sha["get_or_lock"], 3, *k4[:3], *base_args)
    check(isinstance(r, RedisErr) and "expected 4 KEYS" in str(r), "get_or_lock wrong KEYS count")
    r = c.call_err("EVALSHA", sha["get_or_lock"], 4, *k4, *base_args[:7])
    check(isinstance(r, RedisErr) and "expected 8 ARGV" in str(r), "get_or_lock wrong ARGV count")
    check(c.call("EXISTS", *k4) == 0, "bad calls wrote nothing")

    cargs = ["1", "v", "1000", "1000", "0.1", "0.5", "5", "f", "chan", "bad", "1000", ""]
    cbad = [(0, "0"), (0, "01"), (0, "x"), (2, "0"), (3, "-1"), (4, "0.6"), (4, "-0.1"),
            (5, "1"), (5, "-0.1"), (6, "-1"), (8, ""), (9, ""), (9, "a|b"), (10, "0")]
    for idx, v in cbad:
        a = list(cargs)
        a[idx] = v
        r = c.call_err("EVALSHA", sha["commit"], 3, *k4[:3], *a)
        check(isinstance(r, RedisErr) and "ERR stampede: commit: ARGV[%d]" % (idx + 1) in str(r),
              "commit rejects ARGV[%d]=%r -> %r" % (idx + 1, v, r))
    rargs = ["1", "chan", "bad", "", "1"]
    for idx, v in [(0, "0"), (0, "abc"), (1, ""), (2, ""), (2, "x|y"), (4, "2")]:
        a = list(rargs)
        a[idx] = v
        r = c.call_err("EVALSHA", sha["release"], 2, *k4[:2], *a)
        check(isinstance(r, RedisErr) and "ERR stampede: release: ARGV[%d]" % (idx + 1) in str(r),
              "release rejects ARGV[%d]=%r -> %r" % (idx + 1, v, r))
    for a in (["", "bad"], ["chan", ""], ["chan", "a|b"]):
        r = c.call_err("EVALSHA", sha["invalidate_key"], 2, *k4[:2], *a)
        check(isinstance(r, RedisErr) and "ERR stampede: invalidate_key: ARGV" in str(r),
              "invalidate_key rejects %r -> %r" % (a, r))
    r = c.call_err("EVALSHA", sha["commit"], 3, *k4[:3], *cargs[:11])
    check(isinstance(r, RedisErr) and "expected 12 ARGV" in str(r), "commit wrong ARGV count")
    check(c.call("EXISTS", *k4) == 0, "bad calls wrote nothing (2)")

    # ---------------------------------------------------------------- empty value/fmt: no truncation
    c.call("DEL", *keys("e10"))
    r = gol("e10")
    commit("e10", r[1], value=b"", fmt="", tags="")
    notice()
    r = gol("e10")
    shape(r, "fresh", FRESH)
    check(r[1] == b"" and r[7] == b"", "empty val/fmt are '' not nil, array complete")
    c.call("HDEL", keys("e10")[0], "fmt", "ct", "cms", "fence")
    r = gol("e10")
    shape(r, "fresh", FRESH)
    check(r[4:8] == [0, 0, 0, b""], "missing ct/cms/fence/fmt -> 0/0/0/''")

    # lock without TTL gets bounded
    c.call("DEL", *keys("e11"))
    c.call("SET", keys("e11")[1], "5")
    r = gol("e11")
    check(r[0] == b"wait" and r[1] == 5 and r[2] == 5000 and 0 < c.call("PTTL", keys("e11")[1]) <= 5000,
          "lock without TTL gets bounded to lock TTL")


if __name__ == "__main__":
    main()
