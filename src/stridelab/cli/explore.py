"""``stridelab explore``: the interactive pages (arithmetic, model, study) in a local web app.

Binds 127.0.0.1 by default; another host prints a warning, since the app has no authentication.
``--model`` may name user code (``file.py:attr``, ``package.module:attr``): that spec is trusted
because it comes from the command line; the page itself chooses built-in and registry names only.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
import threading
import webbrowser
from pathlib import Path
from typing import Any

LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "explore", help="interactive pages for stride, padding and receptive fields (web app)",
        description="Start a local web app: the arithmetic of one layer or a chain, a model's "
                    "strides and receptive fields over a photo, and study results.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to bind (default 127.0.0.1; anything else is reachable by "
                             "others and prints a warning)")
    parser.add_argument("--port", type=_port, default=8000, help="port (default 8000; 0: any free)")
    parser.add_argument("--model", metavar="SPEC",
                        help="model for the model page: a built-in or registry name, or your own "
                             "file.py:attr / package.module:attr (runs that code)")
    parser.add_argument("--runs", metavar="PATH",
                        help="a study folder runs/<name>/ (or runs/ with several) for the study "
                             "page")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.set_defaults(run=run)


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"--port must be an int from 0 to 65535, got {text!r}")
    return value


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/"


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from stridelab.web import create_app

    if args.runs is not None and not Path(args.runs).is_dir():
        raise ValueError(f"--runs: {args.runs!r} is not a folder (give runs/<name>/ or runs/)")
    if args.model is not None:  # fail now, not in the page: the spec must load
        from stridelab.web.models import ModelSource
        from stridelab.web.params import ParamError
        try:
            ModelSource(args.model).load(args.model, meta=True)
        except ParamError as err:
            raise ValueError(f"--model: {err.message}") from None
    loopback = is_loopback(args.host)
    if not loopback:
        print(f"stridelab explore: warning: binding {args.host}, not 127.0.0.1: anyone who can "
              f"reach this address can use the app (no authentication).", file=sys.stderr)
    app = create_app(model=args.model, runs=args.runs,
                     allowed_hosts=LOOPBACK_NAMES if loopback else None)
    config = uvicorn.Config(app, host=args.host.strip("[]"), port=args.port, log_level="warning")
    server = uvicorn.Server(config)
    if not args.no_browser:
        def open_when_ready() -> None:
            while not server.started and not server.should_exit:
                threading.Event().wait(0.05)
            if server.started:
                port = server.servers[0].sockets[0].getsockname()[1] if server.servers else args.port
                webbrowser.open(_url(args.host, port))
        threading.Thread(target=open_when_ready, daemon=True).start()
    print(f"stridelab explore: serving on {_url(args.host, args.port)} (Ctrl+C stops)",
          file=sys.stderr)
    server.run()
    return 0
