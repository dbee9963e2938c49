"""``ossdesk sandbox``: run the local OSS-compatible server until Ctrl-C."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path

from ossdesk.config import paths
from ossdesk.sandbox.server import (
    DEFAULT_ACCESS_KEY_ID,
    DEFAULT_ACCESS_KEY_SECRET,
    DEFAULT_BUCKET,
    DEFAULT_PORT,
    DEFAULT_REGION,
    SandboxServer,
)


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default: 127.0.0.1, this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"port to listen on (default: {DEFAULT_PORT}; 0 = any free port)")
    parser.add_argument("--root", type=Path, default=None,
                        help="folder that stores the objects (default: the sandbox folder in "
                             "ossdesk's data folder)")
    parser.add_argument("--bucket", action="append", dest="buckets", metavar="NAME",
                        help=f"a bucket that exists from the start; repeat for more "
                             f"(default: {DEFAULT_BUCKET})")
    parser.add_argument("--region", default=DEFAULT_REGION,
                        help=f"region for signature V4 (default: {DEFAULT_REGION})")
    parser.add_argument("--log", type=Path, default=None, metavar="FILE",
                        help="append one tab-separated line per request to FILE")
    bench = parser.add_argument_group(
        "benchmark modes (off by default; NOT faithful to OSS, for throughput measurements "
        "only)")
    bench.add_argument("--fast-etag", action="store_true",
                       help="NOT OSS-faithful: ETags are derived from CRC-64 and size instead "
                            "of MD5 (MD5 is still computed, and checked, for a request that "
                            "sends Content-MD5); CRC-64 headers stay exact")
    bench.add_argument("--discard", action="store_true",
                       help="NOT OSS-faithful: bodies are checked (CRC-64) and counted but "
                            "not stored; GetObject of such an object answers an "
                            "ObjectDiscarded error, HeadObject still reports size and CRC-64. "
                            "Implies --fast-etag")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _interrupt_on_signals() -> None:
    """Ctrl-C (and a polite termination request) stop the server cleanly, even when the
    process was started with SIGINT ignored (as background jobs of a shell are)."""
    if threading.current_thread() is not threading.main_thread():
        return
    signal.signal(signal.SIGINT, _raise_interrupt)
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, _raise_interrupt)


def run(args: argparse.Namespace) -> int:
    root: Path = args.root if args.root is not None else paths().sandbox_root
    ak = os.environ.get("OSS_ACCESS_KEY_ID") or DEFAULT_ACCESS_KEY_ID
    sk = os.environ.get("OSS_ACCESS_KEY_SECRET") or DEFAULT_ACCESS_KEY_SECRET
    token = os.environ.get("OSS_SESSION_TOKEN") or None
    try:
        server = SandboxServer(
            root, host=args.host, port=args.port, buckets=args.buckets or (DEFAULT_BUCKET,),
            region=args.region, access_key_id=ak, access_key_secret=sk, security_token=token,
            log_path=args.log, fast_etag=args.fast_etag, discard=args.discard,
        )
        server.start()
    except ValueError as exc:
        print(f"ossdesk sandbox: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ossdesk sandbox: cannot listen on {args.host}:{args.port} ({exc.strerror}). "
              "Stop the program using that port or choose another with --port "
              "(--port 0 picks a free one).", file=sys.stderr)
        return 1
    secret_shown = (sk if sk == DEFAULT_ACCESS_KEY_SECRET
                    else "(the value of OSS_ACCESS_KEY_SECRET)")
    lines = [
        "ossdesk sandbox: a local OSS-compatible server is running.",
        *([] if server.faithful else [f"  mode:              {server.mode_description()}"]),
        f"  endpoint:          {server.endpoint}",
        f"  region:            {server.region}",
        f"  bucket(s):         {', '.join(server.bucket_names)}",
        f"  access key id:     {ak}",
        f"  access key secret: {secret_shown}",
    ]
    if token:
        lines.append("  security token:    (the value of OSS_SESSION_TOKEN)")
    lines += [f"  storage:           {root}" + (" (bodies not stored)" if server.discard else "")]
    if args.log is not None:
        lines.append(f"  access log:        {args.log}")
    if server.test_hooks:
        lines.append("  test hooks:        on (POST /-/sandbox/faults)")
    lines.append("Press Ctrl-C to stop.")
    print("\n".join(lines), flush=True)
    _interrupt_on_signals()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        print("ossdesk sandbox: stopped.", flush=True)
    finally:
        server.stop()
    return 0
