#!/usr/bin/env python3
"""The benchmark orchestrator behind bench/run.sh: certgate beside nginx and haproxy.

It starts a fast upstream (nginx, pinned to the client CPU), nginx, haproxy and several
certgate nodes (each with one worker, pinned to the proxy CPU), configures certgate
through its admin API, checks every endpoint answers 200 with the client certificate (and
refuses a request without one), runs each scenario in interleaved repetitions with
bench/loadgen (pinned to the client CPU), writes every raw number as a JSON line and every
command to bench/results/<run>/, and prints a summary (see summarize()).

Only the Python standard library is used. Settings come from BENCH_* environment
variables (documented in docs/BENCHMARKS.md).

    python3 bench/lib/bench.py                       # a run (bench/run.sh builds first)
    python3 bench/lib/bench.py --summarize FILE.jsonl  # the summary of an earlier run
"""

import concurrent.futures
import ctypes
import datetime
import http.client
import json
import os
import resource
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BENCH = os.path.join(ROOT, "bench")
CONFIGS = os.path.join(BENCH, "configs")
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
LOADGEN = os.environ.get("BENCH_LOADGEN", os.path.join(TARGET_DIR, "release", "certgate-loadgen"))
CERTGATE = os.environ.get("BENCH_CERTGATE", os.path.join(TARGET_DIR, "release", "certgate"))
# A second certgate build (e.g. the commit before a change) run beside CERTGATE in the same
# run as endpoint certgate-base-ecdsa, labelled "certgate-base": ratios certgate/certgate-base
# are paired within each repetition, so they measure the change, not the machine's drift.
CERTGATE_BASE = os.environ.get("BENCH_CERTGATE_BASE", "")

TOKEN = "bench-admin-token-0123456789abcdef"
# Matches the one client certificate and the load generator's pool (CN=bench-client-NNNNNN).
MATCHING_DN = "CN=bench-client*,OU=Bench,O=certgate,C=US"
HEADER_NAME = "X-SSL-Client-Cert"


def env_float(name, default):
    return float(os.environ.get(name, default))


def env_int(name, default):
    return int(os.environ.get(name, default))


DURATION = env_float("BENCH_DURATION", 5)
WARMUP = env_float("BENCH_WARMUP", 1)
REPS = env_int("BENCH_REPS", 5)
HOLD = env_int("BENCH_HOLD", 10000)
CLIENT_POOL = env_int("BENCH_CLIENT_POOL", 50000)
HOLD_SECONDS = env_float("BENCH_HOLD_SECONDS", 5)
PROXY_CPU = os.environ.get("BENCH_PROXY_CPU", "0")
CLIENT_CPU = os.environ.get("BENCH_CLIENT_CPU", "1")
LOADGEN_THREADS = env_int("BENCH_LOADGEN_THREADS", 1)
PORT_BASE = env_int("BENCH_PORT_BASE", 28000)
# The load generator skips the server certificate checks unless BENCH_VERIFY_SERVER=1
# (curl checks them in the smoke stage); see docs/BENCHMARKS.md.
VERIFY_SERVER = os.environ.get("BENCH_VERIFY_SERVER", "0") == "1"
MAX_SECONDS = env_float("BENCH_MAX_SECONDS", 1080)
ALL_SCENARIOS = ["ka-h1", "hs-ecdsa", "hs-ecdsa-cold", "hs-rsa", "ca1000-hs", "ca1000-ka", "header", "h2",
                 "hs-revocation", "mem"]
SCENARIOS = os.environ.get("BENCH_SCENARIOS", " ".join(ALL_SCENARIOS)).split()
PROXIES = os.environ.get("BENCH_TARGETS", "nginx haproxy certgate").split()

UPSTREAM_PORT = PORT_BASE + 1
# The OCSP responder the client certificates name (bench/lib/pki.sh, BENCH_OCSP_URL).
OCSP_PORT = PORT_BASE + 5
PORTS = {
    "nginx-ecdsa": PORT_BASE + 10,
    "nginx-rsa": PORT_BASE + 11,
    "nginx-ecdsa-ca1000": PORT_BASE + 12,
    "nginx-ecdsa-ca1000-names": PORT_BASE + 13,
    "haproxy-ecdsa": PORT_BASE + 20,
    "haproxy-rsa": PORT_BASE + 21,
    "certgate-ecdsa": PORT_BASE + 30,
    "certgate-rsa": PORT_BASE + 31,
    "certgate-ecdsa-ca1000": PORT_BASE + 32,
    "certgate-ecdsa-ca1000-dn1": PORT_BASE + 35,
    "certgate-ecdsa-ca1-dn1000": PORT_BASE + 36,
    "certgate-header": PORT_BASE + 33,
    "certgate-none": PORT_BASE + 34,
    **({"certgate-base-ecdsa": PORT_BASE + 37} if CERTGATE_BASE else {}),
    # The revocation scenario: revocation = crl (the client CA's CRL configured) and
    # revocation = ocsp (answers fetched from `openssl ocsp` on OCSP_PORT, then cached).
    **({"certgate-crl-ecdsa": PORT_BASE + 38, "certgate-ocsp-ecdsa": PORT_BASE + 39}
       if "hs-revocation" in SCENARIOS else {}),
}
ADMIN_PORT_OFFSET = 10  # certgate admin port = listener port + 10

# Scenarios: id -> (title, loadgen arguments, [(label, endpoint)]).
KA = ["--mode", "keepalive", "--connections", "64"]
HS = ["--mode", "handshake", "--connections", "32"]
# "@POOL@": present distinct client certificates (a new one per handshake) instead of one.
HS_COLD = HS + ["@POOL@"]
SCENARIO_DEFS = {
    "ka-h1": ("keep-alive HTTP/1.1 GET, ECDSA mTLS, 64 connections", KA,
              [("nginx", "nginx-ecdsa"), ("haproxy", "haproxy-ecdsa"), ("certgate", "certgate-ecdsa")]),
    "hs-ecdsa": ("full mTLS handshake per request, ECDSA P-256, 32 concurrent", HS,
                 [("nginx", "nginx-ecdsa"), ("haproxy", "haproxy-ecdsa"), ("certgate", "certgate-ecdsa")]),
    "hs-ecdsa-cold": ("full mTLS handshake per request, ECDSA, a never-seen client certificate each time, 32 concurrent",
                      HS_COLD,
                      [("nginx", "nginx-ecdsa"), ("haproxy", "haproxy-ecdsa"), ("certgate", "certgate-ecdsa")]),
    "hs-rsa": ("full mTLS handshake per request, RSA-2048, 32 concurrent", HS,
               [("nginx", "nginx-rsa"), ("haproxy", "haproxy-rsa"), ("certgate", "certgate-rsa")]),
    "ca1000-hs": ("1 CA + 1 pattern vs 1000 CAs + 1000 patterns (match last), full handshakes with never-seen "
                  "client certificates, 32 concurrent", HS_COLD,
                  [("certgate-1", "certgate-ecdsa"), ("certgate-1000", "certgate-ecdsa-ca1000"),
                   ("cg-1000ca-1dn", "certgate-ecdsa-ca1000-dn1"), ("cg-1ca-1000dn", "certgate-ecdsa-ca1-dn1000"),
                   ("nginx-1", "nginx-ecdsa"), ("nginx-1000", "nginx-ecdsa-ca1000")]),
    "ca1000-ka": ("1 CA + 1 pattern vs 1000 CAs + 1000 patterns (match last), keep-alive, 64 connections", KA,
                  [("certgate-1", "certgate-ecdsa"), ("certgate-1000", "certgate-ecdsa-ca1000")]),
    "header": ("header mode (URL-encoded PEM in X-SSL-Client-Cert) vs mode none, plain HTTP keep-alive, 64 connections",
               KA + ["--header-file", "@HEADER_FILE@"],
               [("none", "certgate-none"), ("header", "certgate-header")]),
    "hs-revocation": ("full mTLS handshake per request, ECDSA, revocation = crl (a configured CRL) vs "
                      "revocation = ocsp (the responder's answer cached), 32 concurrent", HS,
                      [("crl", "certgate-crl-ecdsa"), ("ocsp", "certgate-ocsp-ecdsa")]),
    "h2": ("HTTP/2 keep-alive, ECDSA mTLS, 8 connections x 8 streams",
           ["--mode", "keepalive", "--http2", "--connections", "8", "--streams", "8"],
           [("nginx", "nginx-ecdsa"), ("haproxy", "haproxy-ecdsa"), ("certgate", "certgate-ecdsa")]),
}
if CERTGATE_BASE:
    for _id in ("ka-h1", "hs-ecdsa", "hs-ecdsa-cold", "h2"):
        SCENARIO_DEFS[_id][2].append(("certgate-base", "certgate-base-ecdsa"))
MEM_ENDPOINTS = [("nginx", "nginx-ecdsa"), ("haproxy", "haproxy-ecdsa"), ("certgate", "certgate-ecdsa")]


def endpoint_proc(ep):
    """The process (group) that serves an endpoint."""
    if ep.startswith("nginx"):
        return "nginx"
    if ep.startswith("haproxy"):
        return "haproxy"
    return ep


def endpoint_alg(ep):
    return "rsa" if ep.endswith("-rsa") else "ecdsa"


def endpoint_url(ep):
    scheme = "http" if ep in ("certgate-header", "certgate-none") else "https"
    return f"{scheme}://127.0.0.1:{PORTS[ep]}/"


# ---------------------------------------------------------------- processes and /proc

CLK_TCK = os.sysconf("SC_CLK_TCK")


def pdeathsig():
    """Child setup: die with the orchestrator (Linux prctl PR_SET_PDEATHSIG)."""
    try:
        ctypes.CDLL("libc.so.6").prctl(1, signal.SIGTERM)
    except OSError:
        pass


def proc_children(pid):
    kids = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            if int(rest[1]) == pid:
                kids.append(int(d))
        except (OSError, IndexError, ValueError):
            continue
    return kids


def cpu_seconds(pids):
    total = 0.0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                rest = f.read().rsplit(")", 1)[1].split()
            total += (int(rest[11]) + int(rest[12])) / CLK_TCK
        except (OSError, IndexError, ValueError):
            pass
    return total


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except (OSError, ValueError):
            pass
    return total


def parse_cpu_list(spec):
    """A taskset CPU list ("0", "0-1", "0,2-3") as a set of CPU numbers."""
    cpus = set()
    for part in spec.split(","):
        part = part.strip()
        if "-" in part:
            a, b = part.split("-", 1)
            cpus.update(range(int(a), int(b) + 1))
        elif part:
            cpus.add(int(part))
    return cpus


def cpus_busy_seconds(cpus):
    """Busy (non-idle) CPU seconds of the given CPUs since boot, from /proc/stat."""
    total = 0.0
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *vals = line.split()
                if not name.startswith("cpu") or name == "cpu" or int(name[3:]) not in cpus:
                    continue
                v = [int(x) for x in vals[:8]]
                total += (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK
    except (OSError, ValueError, IndexError):
        return None
    return total


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return float(f.read().split()[0])
    except (OSError, ValueError):
        return None


def port_open(port):
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class Bench:
    def __init__(self):
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.run_dir = os.environ.get("BENCH_RUN_DIR") or os.path.join(BENCH, "results", stamp)
        self.pki = os.environ.get("BENCH_PKI_DIR") or os.path.join(BENCH, "results", "pki")
        os.makedirs(os.path.join(self.run_dir, "logs"), exist_ok=True)
        self.results_path = os.path.join(self.run_dir, "results.jsonl")
        self.commands_path = os.path.join(self.run_dir, "commands.txt")
        self.procs = {}
        self.down = {}  # endpoint or process -> reason
        self.started = time.monotonic()
        self.header_file = os.path.join(self.run_dir, "header.value")

    # -- bookkeeping

    def note_command(self, argv, what=""):
        with open(self.commands_path, "a") as f:
            f.write((f"# {what}\n" if what else "") + shlex.join(argv) + "\n")

    def record(self, obj):
        with open(self.results_path, "a") as f:
            f.write(json.dumps(obj, sort_keys=True) + "\n")

    def log(self, msg):
        t = time.monotonic() - self.started
        print(f"[{t:7.1f}s] {msg}", flush=True)

    def write_pids(self):
        pids = []
        for p in self.procs.values():
            pids.append(p.pid)
            pids.extend(proc_children(p.pid))
        with open(os.path.join(self.run_dir, "pids"), "w") as f:
            f.write("\n".join(str(p) for p in pids) + "\n")

    def start(self, name, argv, cpu, env=None, cwd=None):
        full = ["taskset", "-c", cpu] + argv
        self.note_command(full, f"start {name}" + (f" (env {env})" if env else ""))
        log = open(os.path.join(self.run_dir, "logs", f"{name}.log"), "w")
        penv = dict(os.environ)
        if env:
            penv.update(env)
        p = subprocess.Popen(full, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                             env=penv, cwd=cwd, preexec_fn=pdeathsig)
        self.procs[name] = p
        self.write_pids()
        return p

    def pids(self, name):
        p = self.procs.get(name)
        if p is None or p.poll() is not None:
            return []
        return [p.pid] + proc_children(p.pid)

    def wait_port(self, name, port, timeout=30):
        deadline = time.monotonic() + timeout
        p = self.procs[name]
        while time.monotonic() < deadline:
            if p.poll() is not None:
                return f"{name} exited with status {p.returncode} (see logs/{name}.log)"
            if port_open(port):
                return None
            time.sleep(0.1)
        return f"{name} did not listen on port {port} within {timeout}s"

    def stop_all(self):
        for name, p in list(self.procs.items()):
            kids = proc_children(p.pid) if p.poll() is None else []
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(timeout=5)
            for k in kids:
                try:
                    os.kill(k, signal.SIGKILL)
                except OSError:
                    pass
        self.procs.clear()

    def render(self, template, out, values):
        with open(os.path.join(CONFIGS, template)) as f:
            text = f.read()
        for k, v in values.items():
            text = text.replace(f"@@{k}@@", str(v))
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "w") as f:
            f.write(text)
        return out

    # -- setup

    def check_ports_free(self):
        busy = [p for p in [UPSTREAM_PORT] + list(PORTS.values())
                + [PORTS[e] + ADMIN_PORT_OFFSET for e in PORTS if e.startswith("certgate")] if port_open(p)]
        if busy:
            raise SystemExit(f"ports already in use: {busy} (set BENCH_PORT_BASE)")

    def start_upstream(self):
        d = os.path.join(self.run_dir, "upstream")
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        conf = self.render("nginx-upstream.conf.in", os.path.join(d, "nginx.conf"),
                           {"RUN": self.run_dir, "UPSTREAM_PORT": UPSTREAM_PORT})
        self.start("upstream", ["nginx", "-e", "stderr", "-p", d, "-c", conf], CLIENT_CPU)
        err = self.wait_port("upstream", UPSTREAM_PORT)
        if err:
            raise SystemExit(f"the upstream did not start: {err}")

    def start_nginx(self):
        d = os.path.join(self.run_dir, "nginx")
        os.makedirs(os.path.join(d, "tmp"), exist_ok=True)
        values = {"RUN": self.run_dir, "PKI": self.pki, "UPSTREAM_PORT": UPSTREAM_PORT,
                  "NGINX_ECDSA_PORT": PORTS["nginx-ecdsa"], "NGINX_RSA_PORT": PORTS["nginx-rsa"],
                  "NGINX_CA1000_PORT": PORTS["nginx-ecdsa-ca1000"],
                  "NGINX_CA1000_NAMES_PORT": PORTS["nginx-ecdsa-ca1000-names"]}
        self.render("nginx-proxy-location.conf.in", os.path.join(d, "proxy-location.conf"), values)
        conf = self.render("nginx-proxy.conf.in", os.path.join(d, "nginx.conf"), values)
        self.start("nginx", ["nginx", "-e", "stderr", "-p", d, "-c", conf], PROXY_CPU)
        for ep in ("nginx-ecdsa", "nginx-rsa", "nginx-ecdsa-ca1000", "nginx-ecdsa-ca1000-names"):
            err = self.wait_port("nginx", PORTS[ep])
            if err:
                self.down["nginx"] = err
                return

    def start_haproxy(self):
        d = os.path.join(self.run_dir, "haproxy")
        os.makedirs(d, exist_ok=True)
        conf = self.render("haproxy.cfg.in", os.path.join(d, "haproxy.cfg"), {
            "RUN": self.run_dir, "PKI": self.pki, "UPSTREAM_PORT": UPSTREAM_PORT,
            "HAPROXY_ECDSA_PORT": PORTS["haproxy-ecdsa"], "HAPROXY_RSA_PORT": PORTS["haproxy-rsa"],
            "HAPROXY_MAXCONN": max(HOLD + 500, 2000)})
        self.start("haproxy", ["haproxy", "-db", "-f", conf], PROXY_CPU)
        for ep in ("haproxy-ecdsa", "haproxy-rsa"):
            err = self.wait_port("haproxy", PORTS[ep])
            if err:
                self.down["haproxy"] = err
                return

    def start_certgate(self, ep):
        d = os.path.join(self.run_dir, ep)
        os.makedirs(d, exist_ok=True)
        if ep in ("certgate-header", "certgate-none"):
            ssl, files = "false", ""
        else:
            alg = endpoint_alg(ep)
            ssl = "true"
            files = (f'certificate = "{self.pki}/{alg}/server-chain.pem"\n'
                     f'private_key = "{self.pki}/{alg}/server.key"')
        conf = self.render("certgate.toml.in", os.path.join(d, "certgate.toml"), {
            "DIR": d, "PORT": PORTS[ep], "ADMIN_PORT": PORTS[ep] + ADMIN_PORT_OFFSET,
            "SSL": ssl, "TLS_FILES": files, "TOKEN": TOKEN})
        binary = CERTGATE_BASE if ep == "certgate-base-ecdsa" else CERTGATE
        if not os.path.exists(binary):
            self.down[ep] = f"{binary} was not built"
            return
        self.start(ep, [binary, "serve", "--config", conf], PROXY_CPU,
                   env={"CERTGATE_WORKER_THREADS": "1", "RUST_LOG": os.environ.get("RUST_LOG", "warn")})

    def admin(self, ep, method, path, body=None, timeout=10):
        port = PORTS[ep] + ADMIN_PORT_OFFSET
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body)
            headers = {"Authorization": f"Bearer {TOKEN}"}
            if data is not None:
                headers["Content-Type"] = "application/json"
            conn.request(method, path, body=data, headers=headers)
            r = conn.getresponse()
            raw = r.read()
            try:
                return r.status, json.loads(raw) if raw else None
            except ValueError:
                return r.status, raw.decode(errors="replace")
        finally:
            conn.close()

    def configure_certgate(self, ep):
        """Sets up one certgate node through the admin API (SPEC §8)."""
        name = ep
        err = self.wait_port(name, PORTS[ep] + ADMIN_PORT_OFFSET, timeout=30)
        if err:
            return err
        calls = []

        def call(method, path, body, want):
            status, resp = self.admin(ep, method, path, body)
            calls.append(f"{method} {path} -> {status}")
            if status not in want:
                raise RuntimeError(f"{method} {path} answered {status}: {str(resp)[:300]}")
            return resp

        try:
            if ep.startswith(("certgate-ecdsa", "certgate-rsa", "certgate-base-ecdsa",
                              "certgate-crl-ecdsa", "certgate-ocsp-ecdsa")):
                many_cas = ep in ("certgate-ecdsa-ca1000", "certgate-ecdsa-ca1000-dn1")
                many_dns = ep in ("certgate-ecdsa-ca1000", "certgate-ecdsa-ca1-dn1000")
                if many_cas:
                    pems = split_pems(os.path.join(self.pki, "ca-1000.pem"))
                else:
                    pems = split_pems(os.path.join(self.pki, endpoint_alg(ep), "client-ca.pem"))
                patterns = [MATCHING_DN]
                if many_dns:
                    patterns = [f"CN=svc-{i:04d}-*,OU=Bench,O=certgate,C=US" for i in range(1, 1000)] + patterns
                for i, pem in enumerate(pems, 1):
                    comp = call("POST", "/api/v1/certificates", {"name": f"bench-client-ca-{i:04d}", "pem": pem}, (201,))
                    call("POST", "/api/v1/gateway/trusted-certificates", {"certificate_id": comp["id"]}, (201,))
                call("PUT", "/api/v1/gateway/client-cert-auth",
                     {"mode": "mtls", "required": True, "trusted_dns": patterns}, (200,))
                if ep == "certgate-crl-ecdsa":
                    with open(os.path.join(self.pki, "ecdsa", "client.crl")) as f:
                        crl = f.read()
                    call("PUT", "/api/v1/gateway/client-cert-auth", {"revocation": "crl", "crls": [crl]}, (200,))
                elif ep == "certgate-ocsp-ecdsa":
                    call("PUT", "/api/v1/gateway/client-cert-auth",
                         {"revocation": "ocsp", "revocation_fetch_hosts": ["127.0.0.1"]}, (200,))
            elif ep == "certgate-header":
                call("PUT", "/api/v1/gateway/client-cert-auth",
                     {"mode": "header", "required": True, "header_name": HEADER_NAME,
                      "trusted_proxies": ["127.0.0.1/32"], "trusted_dns": [MATCHING_DN]}, (200,))
            call("POST", "/api/v1/apis", {"name": "bench", "base_path": "/",
                                           "upstream": f"http://127.0.0.1:{UPSTREAM_PORT}"}, (201,))
        except (RuntimeError, OSError, KeyError, TypeError, http.client.HTTPException) as e:
            return f"admin setup failed: {e}"
        finally:
            with open(os.path.join(self.run_dir, ep, "admin-calls.txt"), "w") as f:
                f.write("\n".join(calls) + "\n")
        return None

    def curl(self, ep, with_cert=True):
        """One request with curl; returns the HTTP status ('000' when the connection failed)."""
        alg = endpoint_alg(ep)
        port = PORTS[ep]
        argv = ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "5"]
        if endpoint_url(ep).startswith("https"):
            argv += ["--resolve", f"localhost:{port}:127.0.0.1", "--cacert",
                     os.path.join(self.pki, alg, "server-root.pem")]
            if with_cert:
                argv += ["--cert", os.path.join(self.pki, alg, "client.pem"),
                         "--key", os.path.join(self.pki, alg, "client.key")]
            argv.append(f"https://localhost:{port}/")
        else:
            if with_cert:
                argv += ["-H", f"@{self.header_file}.curl"]
            argv.append(f"http://127.0.0.1:{port}/")
        self.note_command(argv, f"smoke check {ep} ({'with' if with_cert else 'without'} certificate)")
        r = subprocess.run(argv, capture_output=True, text=True, timeout=15)
        return r.stdout.strip() or "000"

    def setup(self):
        self.check_ports_free()
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        with open(os.path.join(self.pki, "ecdsa", "client.urlenc")) as f:
            value = f.read()
        with open(self.header_file, "w") as f:
            f.write(value)
        with open(self.header_file + ".curl", "w") as f:
            f.write(f"{HEADER_NAME}: {value}\n")
        self.start_upstream()
        if "certgate-ocsp-ecdsa" in PORTS:
            d = os.path.join(self.pki, "ecdsa")
            self.start("ocsp", ["openssl", "ocsp", "-index", os.path.join(d, "ocsp-index.txt"),
                                "-CA", os.path.join(d, "client-ca.pem"), "-rsigner", os.path.join(d, "client-ca.pem"),
                                "-rkey", os.path.join(d, "client-ca.key"), "-port", str(OCSP_PORT), "-ndays", "1"],
                       CLIENT_CPU)
            # Ready when it says so: a probe connection that sends nothing (wait_port) leaves
            # `openssl ocsp` stuck on it, answering nobody after (seen with OpenSSL 3.0).
            log = os.path.join(self.run_dir, "logs", "ocsp.log")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                with open(log) as f:
                    if "waiting for OCSP client connections" in f.read():
                        break
                time.sleep(0.05)
            else:
                self.down["certgate-ocsp-ecdsa"] = "the OCSP responder did not start (logs/ocsp.log)"
        if "nginx" in PROXIES:
            self.start_nginx()
        if "haproxy" in PROXIES:
            self.start_haproxy()
        cg = [ep for ep in PORTS if ep.startswith("certgate")] if "certgate" in PROXIES else []
        for ep in cg:
            self.start_certgate(ep)
        # Configure the nodes side by side (the 1000-entry ones take the longest).
        live = [ep for ep in cg if ep not in self.down]
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(len(live), 1)) as pool:
            for ep, err in zip(live, pool.map(self.configure_certgate, live)):
                if err:
                    self.down[ep] = err
        self.write_pids()
        # Every endpoint must answer 200 with the certificate and refuse a request without.
        for ep in PORTS:
            proc = endpoint_proc(ep)
            if proc.split("-")[0] not in PROXIES:
                self.down[ep] = "not selected (BENCH_TARGETS)"
                continue
            if proc in self.down or ep in self.down:
                self.down.setdefault(ep, self.down.get(proc, ""))
                continue
            ok = self.curl(ep, True)
            if ok != "200":
                self.down[ep] = f"smoke check answered {ok}, not 200"
                if ep == "nginx-ecdsa-ca1000-names":
                    self.down[ep] += " (expected: 1000 CA names overflow the CertificateRequest)"
            without = self.curl(ep, False) if ep != "certgate-none" else "n/a"
            self.record({"kind": "smoke", "endpoint": ep, "with_cert": ok, "without_cert": without})
            self.log(f"smoke {ep:24s} with certificate: {ok}   without: {without}")
            if ep != "certgate-none" and without == "200":
                self.down[ep] = "accepted a request without a client certificate"
        for ep, why in self.down.items():
            self.log(f"DOWN {ep}: {why}")

    # -- scenarios

    def tls_args(self, alg, pool=False):
        args = ["--cacert", os.path.join(self.pki, alg, "server-root.pem")]
        if pool:
            args += ["--client-pool", str(CLIENT_POOL),
                     "--client-ca-cert", os.path.join(self.pki, alg, "client-ca.pem"),
                     "--client-ca-key", os.path.join(self.pki, alg, "client-ca.key")]
        else:
            args += ["--cert", os.path.join(self.pki, alg, "client.pem"),
                     "--key", os.path.join(self.pki, alg, "client.key")]
        return args if VERIFY_SERVER else args + ["--no-verify-server"]

    def loadgen_argv(self, scen_args, ep, ready):
        alg = endpoint_alg(ep)
        argv = [LOADGEN, endpoint_url(ep), "--duration", str(DURATION), "--warmup", str(WARMUP),
                "--threads", str(LOADGEN_THREADS), "--ready-file", ready]
        if endpoint_url(ep).startswith("https"):
            argv += self.tls_args(alg, pool="@POOL@" in scen_args)
        for a in scen_args:
            if a != "@POOL@":
                argv.append(a.replace("@HEADER_FILE@", f"{HEADER_NAME}:{self.header_file}"))
        return ["taskset", "-c", CLIENT_CPU] + argv

    def time_left(self, need):
        return time.monotonic() - self.started + need <= MAX_SECONDS

    def run_load(self, scen, label, ep, rep, scen_args):
        ready = os.path.join(self.run_dir, "loadgen.ready")
        if os.path.exists(ready):
            os.remove(ready)
        argv = self.loadgen_argv(scen_args, ep, ready)
        self.note_command(argv, f"{scen} {label} rep {rep}")
        proc_pids = self.pids(endpoint_proc(ep))
        up_pids = self.pids("upstream")
        la = loadavg()
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        pcpus, ccpus = parse_cpu_list(PROXY_CPU), parse_cpu_list(CLIENT_CPU)
        # The load starts when the generator has done its start-up work (--client-pool).
        deadline = time.monotonic() + 60
        while not os.path.exists(ready) and p.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(WARMUP)
        c0, u0, t0 = cpu_seconds(proc_pids), cpu_seconds(up_pids), time.monotonic()
        pb0, cb0 = cpus_busy_seconds(pcpus), cpus_busy_seconds(ccpus)
        time.sleep(DURATION)
        c1, u1, t1 = cpu_seconds(proc_pids), cpu_seconds(up_pids), time.monotonic()
        pb1, cb1 = cpus_busy_seconds(pcpus), cpus_busy_seconds(ccpus)
        try:
            out, err = p.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        rec = {"kind": "load", "scenario": scen, "target": label, "endpoint": ep, "rep": rep,
               "cmd": shlex.join(argv), "loadavg_before": la,
               "proxy_cpu": round((c1 - c0) / (t1 - t0), 3),
               "upstream_cpu": round((u1 - u0) / (t1 - t0), 3)}
        try:
            rec.update(json.loads(out.strip().splitlines()[-1]))
        except (ValueError, IndexError):
            rec["failed"] = f"loadgen exit {p.returncode}: {err.strip()[-500:]}"
        # CPU used on the benchmark's CPUs by anything but the benchmark's own processes.
        if None not in (pb0, pb1):
            rec["foreign_cpu_proxy_side"] = round((pb1 - pb0) / (t1 - t0) - rec["proxy_cpu"], 3)
        if None not in (cb0, cb1) and rec.get("client_cpu") is not None:
            rec["foreign_cpu_client_side"] = round(
                (cb1 - cb0) / (t1 - t0) - rec["client_cpu"] - rec["upstream_cpu"], 3)
        self.record(rec)
        if "failed" in rec:
            self.log(f"{scen:10s} rep {rep} {label:14s} FAILED: {rec['failed']}")
        else:
            self.log(f"{scen:10s} rep {rep} {label:14s} {rec['rps']:>10.1f} req/s  p50 {rec['p50_ms']:.3f} ms"
                     f"  p99 {rec['p99_ms']:.3f} ms  errors {rec['errors']}  proxy cpu {rec['proxy_cpu']:.2f}"
                     f"  client cpu {rec.get('client_cpu')}  upstream cpu {rec['upstream_cpu']:.2f}")

    def run_scenario(self, scen):
        title, args, targets = SCENARIO_DEFS[scen]
        live = [(label, ep) for label, ep in targets if ep not in self.down]
        for label, ep in targets:
            if ep in self.down:
                self.record({"kind": "skipped", "scenario": scen, "target": label, "endpoint": ep,
                             "reason": self.down[ep]})
        if not live:
            self.log(f"{scen}: no live target, skipped")
            return
        self.log(f"== {scen}: {title}")
        per_run = DURATION + WARMUP + 1.0
        for rep in range(1, REPS + 1):
            for label, ep in live:
                if not self.time_left(per_run + self.reserve()):
                    self.record({"kind": "skipped", "scenario": scen, "target": label, "endpoint": ep,
                                 "rep": rep, "reason": "time budget (BENCH_MAX_SECONDS)"})
                    self.log(f"{scen} rep {rep} {label}: skipped, time budget")
                    continue
                self.run_load(scen, label, ep, rep, args)

    def reserve(self):
        """Seconds kept for the memory scenario."""
        return 90.0 if "mem" in SCENARIOS else 0.0

    def run_mem(self):
        self.log(f"== mem: RSS with {HOLD} idle mTLS connections (ECDSA), held {HOLD_SECONDS}s")
        for label, ep in MEM_ENDPOINTS:
            if ep in self.down:
                self.record({"kind": "skipped", "scenario": "mem", "target": label, "endpoint": ep,
                             "reason": self.down[ep]})
                continue
            pids = self.pids(endpoint_proc(ep))
            ready = os.path.join(self.run_dir, f"hold-{label}.ready")
            alg = endpoint_alg(ep)
            argv = ["taskset", "-c", CLIENT_CPU, LOADGEN, endpoint_url(ep), "--hold", str(HOLD),
                    "--duration", str(HOLD_SECONDS), "--connections", "64", "--ready-file", ready,
                    "--threads", str(LOADGEN_THREADS)] + self.tls_args(alg)
            self.note_command(argv, f"mem {label}")
            time.sleep(1)
            before = rss_kb(pids)
            p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            deadline = time.monotonic() + 180
            while time.monotonic() < deadline and not os.path.exists(ready) and p.poll() is None:
                time.sleep(0.2)
            held_rss = 0
            if os.path.exists(ready):
                end = time.monotonic() + max(HOLD_SECONDS - 1.0, 0.5)
                while time.monotonic() < end and p.poll() is None:
                    held_rss = max(held_rss, rss_kb(pids))
                    time.sleep(0.25)
            try:
                out, err = p.communicate(timeout=HOLD_SECONDS + 60)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            time.sleep(2)
            after = rss_kb(pids)
            rec = {"kind": "mem", "scenario": "mem", "target": label, "endpoint": ep, "cmd": shlex.join(argv),
                   "rss_before_kb": before, "rss_held_kb": held_rss, "rss_after_kb": after}
            try:
                rec.update(json.loads(out.strip().splitlines()[-1]))
            except (ValueError, IndexError):
                rec["failed"] = f"loadgen exit {p.returncode}: {err.strip()[-500:]}"
            if rec.get("held"):
                rec["per_conn_kb"] = round((held_rss - before) / rec["held"], 2)
            self.record(rec)
            self.log(f"mem {label:9s} held {rec.get('held')}/{HOLD} alive {rec.get('alive_at_end')}  RSS before "
                     f"{before} kB, held {held_rss} kB, after {after} kB  -> {rec.get('per_conn_kb')} kB/conn"
                     + (f"  FAILED: {rec['failed']}" if "failed" in rec else ""))

    def meta(self):
        def out(argv):
            try:
                r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
                return (r.stdout + r.stderr).strip().splitlines()[0]
            except (OSError, IndexError, subprocess.TimeoutExpired):
                return None
        self.record({"kind": "meta", "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                     "git": out(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"]),
                     "git_dirty_files": len(subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--untracked-files=no"],
                                                           capture_output=True, text=True).stdout.splitlines()),
                     "nginx": out(["nginx", "-v"]), "haproxy": out(["haproxy", "-v"]),
                     "openssl": out(["openssl", "version"]), "kernel": os.uname().release,
                     "cpus": os.cpu_count(), "duration_s": DURATION, "warmup_s": WARMUP, "reps": REPS,
                     "hold": HOLD, "client_pool": CLIENT_POOL, "proxy_cpu_list": PROXY_CPU, "client_cpu_list": CLIENT_CPU,
                     "loadgen_threads": LOADGEN_THREADS, "verify_server": VERIFY_SERVER, "scenarios": SCENARIOS, "proxies": PROXIES})

    def run(self):
        self.log(f"results in {self.run_dir}")
        self.meta()
        try:
            self.setup()
            for scen in SCENARIOS:
                if scen == "mem":
                    continue
                if scen not in SCENARIO_DEFS:
                    raise SystemExit(f"unknown scenario {scen!r}; known: {' '.join(ALL_SCENARIOS)}")
                self.run_scenario(scen)
            if "mem" in SCENARIOS:
                self.run_mem()
        finally:
            self.stop_all()
        text = summarize(self.results_path)
        with open(os.path.join(self.run_dir, "summary.txt"), "w") as f:
            f.write(text)
        print(text)
        latest = os.path.join(BENCH, "results", "latest")
        try:
            if os.path.islink(latest):
                os.remove(latest)
            os.symlink(self.run_dir, latest)
        except OSError:
            pass


def split_pems(path):
    with open(path) as f:
        text = f.read()
    out, cur = [], []
    for line in text.splitlines():
        cur.append(line)
        if line.startswith("-----END"):
            out.append("\n".join(cur) + "\n")
            cur = []
    return out


# ---------------------------------------------------------------- summary

# (scenario, numerator, denominator, metric, target description, predicate on the median)
RATIOS = [
    ("ka-h1", "certgate", "nginx", "rps", ">= 1.2", lambda m: m >= 1.2),
    ("ka-h1", "certgate", "haproxy", "rps", ">= 1.2", lambda m: m >= 1.2),
    ("ka-h1", "certgate", "nginx", "p99_ms", "<= 1.0 (p99 no worse)", lambda m: m <= 1.0),
    ("ka-h1", "certgate", "haproxy", "p99_ms", "<= 1.0 (p99 no worse)", lambda m: m <= 1.0),
    ("hs-ecdsa", "certgate", "nginx", "rps", ">= 1.5", lambda m: m >= 1.5),
    ("hs-ecdsa", "certgate", "haproxy", "rps", None, None),
    ("hs-ecdsa-cold", "certgate", "nginx", "rps", ">= 1.5", lambda m: m >= 1.5),
    ("hs-ecdsa-cold", "certgate", "haproxy", "rps", None, None),
    ("hs-rsa", "certgate", "nginx", "rps", ">= 1.5", lambda m: m >= 1.5),
    ("hs-rsa", "certgate", "haproxy", "rps", None, None),
    ("ca1000-hs", "certgate-1000", "certgate-1", "rps", ">= 0.95 (within 5%)", lambda m: m >= 0.95),
    ("ca1000-hs", "cg-1000ca-1dn", "certgate-1", "rps", None, None),
    ("ca1000-hs", "cg-1ca-1000dn", "certgate-1", "rps", None, None),
    ("ca1000-hs", "nginx-1000", "nginx-1", "rps", None, None),
    ("ca1000-ka", "certgate-1000", "certgate-1", "rps", ">= 0.95 (within 5%)", lambda m: m >= 0.95),
    ("header", "header", "none", "rps", ">= 0.90 (within 10%)", lambda m: m >= 0.90),
    ("hs-revocation", "ocsp", "crl", "rps", ">= 0.95 (within 5%)", lambda m: m >= 0.95),
    ("h2", "certgate", "nginx", "rps", None, None),
    ("h2", "certgate", "haproxy", "rps", None, None),
] + ([(sc, "certgate", "certgate-base", m, "~ 1.0 (the change costs nothing)", None)
      for sc in ("ka-h1", "hs-ecdsa", "hs-ecdsa-cold", "h2") for m in ("rps", "p99_ms")]
     if CERTGATE_BASE else [])


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x, nd=2):
    return "-" if x is None else f"{x:.{nd}f}"


def cost_us(r):
    """Proxy CPU microseconds per request: comparable even when the proxy was not saturated."""
    if r.get("proxy_cpu") is None or not r.get("rps"):
        return None
    return r["proxy_cpu"] / r["rps"] * 1e6


def summarize(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    recs.append(json.loads(line))
                except ValueError:
                    continue
    meta = next((r for r in recs if r.get("kind") == "meta"), {})
    loads = [r for r in recs if r.get("kind") == "load" and "failed" not in r]
    failed = [r for r in recs if r.get("kind") == "load" and "failed" in r]
    skipped = [r for r in recs if r.get("kind") == "skipped"]
    mems = [r for r in recs if r.get("kind") == "mem"]
    disturbed = {(r["scenario"], r["target"], r["rep"]) for r in loads
                 if max(r.get("foreign_cpu_proxy_side") or 0, r.get("foreign_cpu_client_side") or 0) > 0.1}
    smoke = [r for r in recs if r.get("kind") == "smoke"]
    lines = []
    w = lines.append
    w("")
    dirty = f" (+{meta['git_dirty_files']} modified files)" if meta.get("git_dirty_files") else ""
    w(f"certgate benchmark  {meta.get('date', '?')}  git {meta.get('git', '?')}{dirty}  "
      f"{meta.get('duration_s')} s x {meta.get('reps')} reps (+{meta.get('warmup_s')} s warm-up)")
    w(f"proxies: 1 worker on CPU {meta.get('proxy_cpu_list')}; loadgen ({meta.get('loadgen_threads')} thread) "
      f"and upstream on CPU {meta.get('client_cpu_list')}; {meta.get('nginx')}; {meta.get('haproxy')}")
    w(f"loadgen verifies the server chain: {'yes' if meta.get('verify_server') else 'no (--no-verify-server)'}; "
      "key exchange X25519; full handshakes with resumption off")
    w("")
    hdr = (f"{'scenario':10s} {'target':14s} {'req/s':>10s} {'p50 ms':>8s} {'p99 ms':>8s} {'errors':>7s} "
           f"{'proxy cpu':>9s} {'us cpu/req':>10s} {'client cpu':>10s} {'upstr cpu':>9s} {'runs':>4s}")
    if smoke:
        w("Smoke checks (HTTP status of one curl request; 000 = TLS/connection failure)")
        for r in smoke:
            w(f"  {r['endpoint']:26s} with the client certificate: {r['with_cert']}   without: {r['without_cert']}")
        w("")
    w("Medians over repetitions")
    w(hdr)
    w("-" * len(hdr))
    order = []
    for r in loads:
        key = (r["scenario"], r["target"])
        if key not in order:
            order.append(key)
    for scen, target in order:
        rs = [r for r in loads if r["scenario"] == scen and r["target"] == target]
        w(f"{scen:10s} {target:14s} {fmt(median([r['rps'] for r in rs]), 1):>10s} "
          f"{fmt(median([r['p50_ms'] for r in rs]), 3):>8s} {fmt(median([r['p99_ms'] for r in rs]), 3):>8s} "
          f"{sum(r['errors'] for r in rs):>7d} {fmt(median([r.get('proxy_cpu') for r in rs])):>9s} "
          f"{fmt(median([cost_us(r) for r in rs]), 1):>10s} "
          f"{fmt(median([r.get('client_cpu') for r in rs])):>10s} {fmt(median([r.get('upstream_cpu') for r in rs])):>9s} "
          f"{len(rs):>4d}")
    w("")
    w("Ratios per repetition (same repetition paired) and their median; * = a disturbed run (below)")
    verdicts = []
    for scen, num, den, metric, goal, pred in RATIOS:
        a = {r["rep"]: r[metric] for r in loads if r["scenario"] == scen and r["target"] == num}
        b = {r["rep"]: r[metric] for r in loads if r["scenario"] == scen and r["target"] == den}
        reps = [k for k in sorted(set(a) & set(b)) if b[k]]
        ratios = [a[k] / b[k] for k in reps]
        if not ratios:
            continue
        m = median(ratios)
        marks = ["*" if (scen, num, k) in disturbed or (scen, den, k) in disturbed else "" for k in reps]
        name = f"{scen} {num}/{den} {'req/s' if metric == 'rps' else 'p99'}"
        verdict = ""
        if pred is not None:
            ok = pred(m)
            verdict = f"  target {goal}: {'MET' if ok else 'NOT MET'}"
            verdicts.append((name, ok))
        w(f"  {name:40s} {' '.join(f'{x:.2f}{mk}' for x, mk in zip(ratios, marks)):40s} median {m:.2f}{verdict}")
        if metric == "rps":
            ca = {r["rep"]: cost_us(r) for r in loads if r["scenario"] == scen and r["target"] == num}
            cb = {r["rep"]: cost_us(r) for r in loads if r["scenario"] == scen and r["target"] == den}
            eff = [cb[k] / ca[k] for k in reps if ca.get(k) and cb.get(k)]
            if eff:
                w(f"  {'':4s}{'CPU efficiency (' + den + ' us/req / ' + num + ' us/req)':36s} "
                  f"{' '.join(f'{x:.2f}' for x in eff):40s} median {median(eff):.2f}")
    if mems:
        w("")
        w(f"Memory: RSS of each proxy holding {meta.get('hold')} idle mTLS connections (one request each)")
        per = {}
        for r in mems:
            if "failed" in r:
                w(f"  {r['target']:9s} FAILED: {r['failed']}")
                continue
            per[r["target"]] = r.get("per_conn_kb")
            w(f"  {r['target']:9s} held {r.get('held')} (alive at end {r.get('alive_at_end')}, errors {r.get('errors')})"
              f"  RSS {r['rss_before_kb']} -> {r['rss_held_kb']} kB  = {fmt(r.get('per_conn_kb'))} kB per connection")
        if per.get("certgate") is not None and per.get("nginx"):
            m = per["certgate"] / per["nginx"]
            ok = m <= 1.0
            verdicts.append(("mem certgate/nginx per connection", ok))
            w(f"  certgate/nginx per connection {m:.2f}  target <= 1.0: {'MET' if ok else 'NOT MET'}")
        if per.get("certgate") is not None and per.get("haproxy"):
            w(f"  certgate/haproxy per connection {per['certgate'] / per['haproxy']:.2f}")
    las = [r.get("loadavg_before") for r in loads if r.get("loadavg_before") is not None]
    if las:
        w("")
        w(f"1-minute load average before the runs: median {median(las):.2f}, max {max(las):.2f} "
          "(the harness itself keeps it near 2; more means other work shared the CPUs)")
    wrapped = sorted({(r["scenario"], r["target"]) for r in loads
                      if r.get("client_pool") and (r.get("client_certs_presented") or 0) > r["client_pool"]})
    if wrapped:
        w("")
        w("Client certificate pool wrapped (some certificates were presented twice; raise BENCH_CLIENT_POOL): "
          + ", ".join(f"{s}/{t}" for s, t in wrapped))
    if disturbed:
        w("")
        w("Disturbed runs (other processes used more than 10% of the proxy's or the client's CPU):")
        w("  " + ", ".join(f"{s}/{t}/rep {k}" for s, t, k in sorted(disturbed)))
    low = sorted({(r["scenario"], r["target"]) for r in loads
                  if (r.get("proxy_cpu") or 0) < 0.9 and (r["scenario"], r["target"], r["rep"]) not in disturbed})
    if low:
        w("")
        w("Undisturbed runs whose proxy used less than 90% of its CPU (the client side limited them; "
          "read the CPU-efficiency ratio):")
        w("  " + ", ".join(f"{s}/{t}" for s, t in low))
    bad_smoke = [r for r in smoke if r.get("with_cert") != "200"]
    if skipped or failed or bad_smoke:
        w("")
        w("Not measured:")
        seen = set()
        for r in skipped:
            key = (r.get("scenario"), r.get("target"), r.get("reason"))
            if key in seen:
                continue
            seen.add(key)
            w(f"  {r.get('scenario')} {r.get('target')}: {r.get('reason')}")
        for r in failed:
            w(f"  {r['scenario']} {r['target']} rep {r['rep']}: {r['failed'][:200]}")
    if verdicts:
        w("")
        met = sum(1 for _, ok in verdicts if ok)
        w(f"Targets met: {met} of {len(verdicts)}")
    w(f"Raw numbers: {path}")
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--summarize":
        print(summarize(sys.argv[2]))
        return
    bench = Bench()

    def on_signal(signum, _frame):
        raise SystemExit(f"stopped by signal {signum}")

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    bench.run()


if __name__ == "__main__":
    main()
