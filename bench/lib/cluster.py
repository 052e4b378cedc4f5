#!/usr/bin/env python3
"""The cluster benchmark (issue 12, SPEC §12): how fast a change reaches every node.

Starts a PostgreSQL server (Debian's packages, as an unprivileged user when run as root,
in a temp dir, on loopback), three `certgate serve` nodes on it (HTTPS listeners with their self-signed certificate,
header mode, one API to a local upstream), then makes CLUSTER_CHANGES admin writes of
alternating kinds, each sent to the next node in turn, and measures for every write and
every node the time from the admin API's answer until that node's proxy answers a probe
request the way the new configuration says (probing, not reading logs):

    kind           write                                            probe → expected
    required-on    PUT /gateway/client-cert-auth {"required": true}   no certificate → 401
    required-off   PUT … {"required": false}                          no certificate → 200
    trust-add      POST /gateway/trusted-certificates (another CA)    header cert → 403
    trust-remove   DELETE /gateway/trusted-certificates/{id}          header cert → 200
    api-add        POST /apis {/n<i>}                                 GET /n<i>/ → 200
    api-delete     DELETE /apis/{id}                                  GET /n<i>/ → 404

Then it trusts CLUSTER_CAS (1000) certificates, one write each, and times
`POST /api/v1/truststore/recover` (a full rebuild of the 1000-certificate trust store:
bundle, manifest, fsync, rename, and the reload) on each node.

Standard library only; needs `openssl`, PostgreSQL (initdb/postgres) and a release build of
certgate (bench/cluster.sh builds it). Prints a summary and writes results.json to the run
directory. Every wait is bounded.
"""

import glob
import http.client
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
CERTGATE = os.environ.get("BENCH_CERTGATE", os.path.join(TARGET_DIR, "release", "certgate"))
CHANGES = int(os.environ.get("CLUSTER_CHANGES", "200"))
CAS = int(os.environ.get("CLUSTER_CAS", "1000"))
NODES = 3
PROBE_TIMEOUT = 10.0
TOKEN = "bench-cluster-token-0123456789abcdef"
HEADER = "X-SSL-Client-Cert"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, timeout=30, proc=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port} after {timeout}s")


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


class Postgres:
    """initdb + postgres in a temp dir; as `nobody` when root (the server refuses root)."""

    def __init__(self, base):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        initdb = shutil.which("initdb") or (bins[-1] if bins else None)
        if not initdb:
            raise RuntimeError("PostgreSQL not found: apt-get install postgresql")
        self.bin = os.path.dirname(os.path.realpath(initdb))
        self.dir = os.path.join(base, "pg")
        os.makedirs(os.path.join(self.dir, "sock"))
        self.prefix = []
        if os.geteuid() == 0:
            # mkdtemp made `base` 0700: the server's user must be able to pass through it.
            os.chmod(base, 0o755)
            run(["chown", "-R", "nobody", self.dir])
            self.prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
        run(self.prefix + [os.path.join(self.bin, "initdb"), "-A", "trust", "-U", "certgate",
                           "-E", "UTF8", "--no-sync", "-D", os.path.join(self.dir, "data")],
            cwd=self.dir)
        self.port = free_port()
        self.log = open(os.path.join(base, "postgres.log"), "w")
        self.proc = subprocess.Popen(
            self.prefix + [os.path.join(self.bin, "postgres"), "-D", os.path.join(self.dir, "data"),
                           "-p", str(self.port), "-k", os.path.join(self.dir, "sock"),
                           "-h", "127.0.0.1", "-c", "max_connections=200"],
            cwd=self.dir, stdout=self.log, stderr=subprocess.STDOUT)
        wait_port(self.port, 30, self.proc)
        deadline = time.monotonic() + 30
        while True:
            r = subprocess.run(self.prefix + [os.path.join(self.bin, "createdb"), "-h", "127.0.0.1",
                                              "-p", str(self.port), "-U", "certgate", "certgate"],
                               capture_output=True, text=True, cwd=self.dir)
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"createdb: {r.stderr}")
            time.sleep(0.2)
        self.url = f"postgres://certgate@127.0.0.1:{self.port}/certgate"

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Upstream(BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class Node:
    def __init__(self, base, i, store):
        self.dir = os.path.join(base, f"node{i}")
        os.makedirs(self.dir)
        self.port, self.admin_port = free_port(), free_port()
        conf = os.path.join(self.dir, "certgate.toml")
        with open(conf, "w") as f:
            f.write(f'data_dir = "data"\nstore = "{store}"\n[listener]\naddress = "127.0.0.1:{self.port}"\n'
                    f'ssl = true\n[admin]\naddress = "127.0.0.1:{self.admin_port}"\ntoken = "{TOKEN}"\n'
                    f'[node]\nname = "bench-{i}"\n')
        self.log = open(os.path.join(self.dir, "certgate.log"), "w")
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        for v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
            env.pop(v, None)
        self.proc = subprocess.Popen([CERTGATE, "serve", "--config", conf], cwd=self.dir,
                                     stdout=self.log, stderr=subprocess.STDOUT, env=env)
        wait_port(self.admin_port, 60, self.proc)
        wait_port(self.port, 60, self.proc)

    def admin(self, method, path, body=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.admin_port, timeout=30)
        try:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            data = None
            if body is not None:
                data = json.dumps(body)
                headers["Content-Type"] = "application/json"
            conn.request(method, "/api/v1" + path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
        finally:
            conn.close()

    def must(self, method, path, body, want):
        status, v = self.admin(method, path, body)
        if status != want:
            raise RuntimeError(f"{method} {path} answered {status}: {v}")
        return v

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Prober:
    """One keep-alive connection per node (reopened after a close)."""

    def __init__(self, port):
        self.port = port
        self.conn = None

    def status(self, path, header=None):
        for _ in range(3):
            try:
                if self.conn is None:
                    # The listener has SSL on (the trust table needs it, SPEC §8) with the
                    # node's self-signed certificate; the probe does not check it.
                    self.conn = http.client.HTTPSConnection(
                        "127.0.0.1", self.port, timeout=5, context=ssl._create_unverified_context())
                headers = {HEADER: header} if header else {}
                self.conn.request("GET", path, headers=headers)
                r = self.conn.getresponse()
                r.read()
                if r.getheader("connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return r.status
            except (OSError, http.client.HTTPException):
                if self.conn is not None:
                    self.conn.close()
                self.conn = None
        return 0


def pki(base):
    d = os.path.join(base, "pki")
    os.makedirs(d)

    def o(*args):
        run(["openssl", *args], cwd=d)

    o("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    o("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Bench Cluster CA", "-days", "30",
      "-out", "ca.pem")
    o("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=Bench Other CA", "-days", "30",
      "-out", "other.pem")
    o("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "client.key")
    o("req", "-new", "-key", "client.key", "-subj", "/CN=bench-client/O=certgate", "-out", "client.csr")
    o("x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
      "-days", "10", "-out", "client.pem")
    # The many-CA trust table: distinct subjects on one key (generation cost stays small).
    many = []
    for i in range(CAS):
        out = os.path.join(d, f"many-{i}.pem")
        o("req", "-x509", "-new", "-key", "ca.key", "-subj", f"/CN=Bench Many CA {i:04d}",
          "-days", "30", "-set_serial", str(1000 + i), "-out", out)
        with open(out) as f:
            many.append(f.read())
    read = lambda n: open(os.path.join(d, n)).read()
    return read("ca.pem"), read("other.pem"), read("client.pem"), many


def pct(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def main():
    base = tempfile.mkdtemp(prefix="certgate-cluster-bench-")
    out_dir = os.environ.get("BENCH_RUN_DIR", os.path.join(ROOT, "bench", "results",
                                                           time.strftime("cluster-%Y%m%d-%H%M%S")))
    os.makedirs(out_dir, exist_ok=True)
    pg, nodes, upstream = None, [], None
    try:
        t = time.monotonic()
        ca, other, client, many = pki(base)
        print(f"pki: {time.monotonic() - t:.1f}s ({CAS} CAs)", flush=True)
        cert_header = urllib.parse.quote(client, safe="")
        pg = Postgres(base)
        upstream = ThreadingHTTPServer(("127.0.0.1", 0), Upstream)
        threading.Thread(target=upstream.serve_forever, daemon=True).start()
        up_url = f"http://127.0.0.1:{upstream.server_address[1]}"
        nodes = [Node(base, i, pg.url) for i in range(NODES)]
        first = nodes[0]
        first.must("PUT", "/gateway/client-cert-auth",
                   {"mode": "header", "header_name": HEADER, "header_format": "auto",
                    "trusted_proxies": ["127.0.0.1/32"], "required": False}, 200)
        first.must("POST", "/apis", {"name": "svc", "base_path": "/svc", "upstream": up_url}, 201)
        other_id = first.must("POST", "/certificates", {"name": "other", "pem": other}, 201)["id"]
        probers = [Prober(n.port) for n in nodes]

        def converged(check, timeout=PROBE_TIMEOUT):
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                if all(check(p) for p in probers):
                    return True
                time.sleep(0.01)
            return False

        if not converged(lambda p: p.status("/svc/") == 200, 30):
            raise RuntimeError("the nodes never served /svc/")

        samples = []  # (change, kind, node, seconds or None)
        api_ids = {}
        kinds = ["required-on", "required-off", "trust-add", "trust-remove", "api-add", "api-delete"]
        for c in range(CHANGES):
            kind = kinds[c % len(kinds)]
            writer = nodes[c % NODES]
            n = c // len(kinds)
            if kind == "required-on":
                call = ("PUT", "/gateway/client-cert-auth", {"required": True}, 200)
                probe = lambda p: p.status("/svc/") == 401
            elif kind == "required-off":
                call = ("PUT", "/gateway/client-cert-auth", {"required": False}, 200)
                probe = lambda p: p.status("/svc/") == 200
            elif kind == "trust-add":
                call = ("POST", "/gateway/trusted-certificates", {"certificate_id": other_id}, 201)
                probe = lambda p: p.status("/svc/", cert_header) == 403
            elif kind == "trust-remove":
                call = ("DELETE", f"/gateway/trusted-certificates/{other_id}", None, 204)
                probe = lambda p: p.status("/svc/", cert_header) == 200
            elif kind == "api-add":
                call = ("POST", "/apis", {"name": f"n{n}", "base_path": f"/n{n}", "upstream": up_url}, 201)
                probe = lambda p, n=n: p.status(f"/n{n}/") == 200
            else:
                call = ("DELETE", f"/apis/{api_ids[n]}", None, 204)
                probe = lambda p, n=n: p.status(f"/n{n}/") == 404
            method, path, body, want = call
            v = writer.must(method, path, body, want)
            answered = time.monotonic()
            if kind == "api-add":
                api_ids[n] = v["id"]
            pending = set(range(NODES))
            deadline = answered + PROBE_TIMEOUT
            while pending and time.monotonic() < deadline:
                for i in list(pending):
                    if probe(probers[i]):
                        samples.append((c, kind, i, time.monotonic() - answered, i == c % NODES))
                        pending.discard(i)
                if pending:
                    time.sleep(0.002)
            for i in pending:
                samples.append((c, kind, i, None, i == c % NODES))

        # The 1000-certificate trust store.
        t = time.monotonic()
        for i, pem in enumerate(many):
            cid = first.must("POST", "/certificates", {"name": f"many-{i:04d}", "pem": pem}, 201)["id"]
            first.must("POST", "/gateway/trusted-certificates", {"certificate_id": cid}, 201)
        fill = time.monotonic() - t
        rebuilds = []
        for node in nodes:
            deadline = time.monotonic() + 60
            while node.must("GET", "/truststore", None, 200).get("entries", 0) < CAS:
                if time.monotonic() > deadline:
                    raise RuntimeError("a node never reached the full trust store")
                time.sleep(0.1)
            for _ in range(5):
                t = time.monotonic()
                node.must("POST", "/truststore/recover", None, 200)
                rebuilds.append(time.monotonic() - t)
        after = converged(lambda p: p.status("/svc/", cert_header) == 403, 30)

        ok = [s[3] for s in samples if s[3] is not None]
        remote = [s[3] for s in samples if s[3] is not None and not s[4]]
        local = [s[3] for s in samples if s[3] is not None and s[4]]
        missed = [s for s in samples if s[3] is None]
        ms = lambda x: round(x * 1000, 1)
        result = {
            "changes": CHANGES, "nodes": NODES, "samples": len(samples), "missed": len(missed),
            "propagation_ms": {"p50": ms(pct(ok, 50)), "p99": ms(pct(ok, 99)), "max": ms(max(ok))},
            "remote_nodes_ms": {"p50": ms(pct(remote, 50)), "p99": ms(pct(remote, 99)), "max": ms(max(remote))},
            "writing_node_ms": {"p50": ms(pct(local, 50)), "p99": ms(pct(local, 99)), "max": ms(max(local))},
            "per_kind_p99_ms": {k: ms(pct([s[3] for s in samples if s[1] == k and s[3] is not None], 99))
                                for k in kinds},
            "trusted_certificates": CAS, "fill_seconds": round(fill, 1),
            "rebuild_ms": {"median": ms(statistics.median(rebuilds)), "max": ms(max(rebuilds)),
                           "runs": len(rebuilds)},
            "still_judging_after_rebuild": after,
            "load_average": os.getloadavg(),
        }
        with open(os.path.join(out_dir, "results.json"), "w") as f:
            json.dump({"summary": result, "samples": samples}, f, indent=1)
        print(json.dumps(result, indent=2))
        target = result["propagation_ms"]["p99"] < 1000 and not missed and result["rebuild_ms"]["max"] < 200
        print(f"targets (p99 < 1 s, none missed, 1000-certificate rebuild < 200 ms): "
              f"{'met' if target else 'NOT met'}; results in {out_dir}")
        return 0
    finally:
        for n in nodes:
            n.stop()
        if upstream is not None:
            upstream.shutdown()
        if pg is not None:
            pg.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
