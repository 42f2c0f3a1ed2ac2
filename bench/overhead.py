"""What observability costs: the same server and data with metrics and tracing off, on, and with
the access log on too, driven by wrk in alternating rounds (so every configuration meets the same
moments of a shared machine). Traces go to a local sink that accepts OTLP and drops it.

    .venv/bin/python -m bench.overhead [--rounds 5] [--seconds 4] [--only Q1,Q2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import median
from typing import Any

from bench import wrk
from bench.run import ensure_data, operations, register, sign_in, start_server, wait_up
from db.embedded import EmbeddedPostgres, default_data_dir
from db.migrations import run_sync

CONFIGS: dict[str, dict[str, str]] = {
    "off": {"METRICS": "off", "LOG_LEVEL": "warning"},
    "metrics": {"METRICS": "on", "LOG_LEVEL": "warning"},
    "metrics+access log": {"METRICS": "on", "LOG_LEVEL": "info"},
    "tracing (every request)": {"METRICS": "off", "LOG_LEVEL": "warning", "TRACE": "1"},
    "tracing (10% sampled)": {
        "METRICS": "off",
        "LOG_LEVEL": "warning",
        "TRACE": "1",
        "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
        "OTEL_TRACES_SAMPLER_ARG": "0.1",
    },
}


class Sink(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--only", default="Q1,Q2")
    args = parser.parse_args()
    os.environ.setdefault("BENCH_SECRET", secrets.token_urlsafe(32))
    embedded = EmbeddedPostgres(
        Path(os.environ.get("BENCH_DATA_DIR", default_data_dir().parent / "bench-pgdata"))
    )
    url = os.environ.get("DATABASE_URL") or embedded.start()
    sink = ThreadingHTTPServer(("127.0.0.1", 0), Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    servers = {}
    try:
        run_sync(url, "upgrade", "head")
        data = asyncio.run(ensure_data(url, 100_000))
        ops = {
            k: v for k, v in operations(data).items() if k.startswith(tuple(args.only.split(",")))
        }
        for name, env in CONFIGS.items():
            endpoint = f"http://127.0.0.1:{sink.server_port}"
            extra = {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint} if env.get("TRACE") else {}
            target, proc = start_server(url, 2, {**env, **extra})
            servers[name] = (proc, target)
            wait_up(target.replace("/graphql", "/readyz"), proc)
        first = next(iter(servers.values()))[1]
        token = sign_in(first)
        register(first, token, ops)  # the by-hash variants' documents (shared by the servers)
        for op, body in ops.items():
            rps: dict[str, list[float]] = {name: [] for name in servers}
            p99: dict[str, list[float]] = {name: [] for name in servers}
            for _ in range(args.rounds):
                for name, (_, target) in servers.items():
                    wrk.run(target, body, token, seconds=1, connections=args.connections)
                    r = wrk.run(
                        target, body, token, seconds=args.seconds, connections=args.connections
                    )
                    rps[name].append(r.rps)
                    p99[name].append(r.p99_ms)
            base = rps["off"]
            for name in servers:
                ratios = [on / off for on, off in zip(rps[name], base, strict=True)]
                print(
                    f"{op:<14} {name:<28} {median(rps[name]):7.0f} req/s  p99 {median(p99[name]):6.1f} ms  "
                    f"vs off {median(ratios):6.1%}  (rounds: {', '.join(f'{x:.0f}' for x in rps[name])})",
                    flush=True,
                )
    finally:
        for proc, _ in servers.values():
            proc.terminate()
            proc.wait()
        sink.shutdown()
        if not os.environ.get("DATABASE_URL"):
            embedded.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
