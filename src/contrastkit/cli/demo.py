"""``contrastkit demo``: serve the interactive demo page on this machine and open it."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import socket
import threading
import time
import webbrowser

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo",
        help="open the interactive demo in the browser",
        description=(
            "Start a local web server with three interactive panels: augmentation pairs seen by "
            "an untrained and a trained encoder, the InfoNCE loss landscape with its gradients, "
            "and a tiny 2-D CLIP that learns to classify zero-shot. Everything runs on this "
            "machine; nothing is loaded from the network. The small encoder of the first panel "
            "trains in the background on first start (under a minute) and is cached in "
            "$CONTRASTKIT_CACHE (default: $XDG_CACHE_HOME/contrastkit or ~/.cache/contrastkit)."
        ),
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 shares the "
        "demo with your network)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8000,
        help="TCP port (default: %(default)s; 0 picks a free one)",
    )
    parser.add_argument(
        "--no-browser",
        action="store_true",
        help="do not open a browser window, just serve",
    )
    parser.set_defaults(func=run)


def _bind(host: str, port: int) -> socket.socket:
    """Bind a listening socket now, so that a busy port is reported before anything starts."""
    if not 0 <= port <= 65535:
        raise ValueError(f"--port must be in [0, 65535], got {port}")
    try:
        family = socket.AF_INET6 if ipaddress.ip_address(host).version == 6 else socket.AF_INET
    except ValueError:
        family = socket.AF_INET  # a host name such as "localhost"
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as err:
        sock.close()
        if err.errno == errno.EADDRINUSE:
            raise OSError(
                f"port {port} on {host} is already in use; pick another with --port"
            ) from None
        raise OSError(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def _open_when_ready(server, url: str) -> None:
    for _ in range(200):
        if server.started:
            webbrowser.open(url)
            return
        time.sleep(0.05)


def run(args: argparse.Namespace) -> int:
    """Serve the demo until Ctrl+C; return the exit code."""
    try:
        import fastapi  # noqa: F401  (checked first: its absence is the usual case)
        import uvicorn

        from contrastkit.web.app import create_app
        from contrastkit.web.limits import server_config
    except ImportError as err:
        raise ValueError(
            f'the demo needs the web extra ({err.name} is missing): pip install "contrastkit[web]"'
        ) from None
    sock = _bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    if not ipaddress.ip_address(host).is_loopback:
        log.warning("serving on %s: anyone on your network can open the demo", host)
    server = uvicorn.Server(
        server_config(create_app(), log_level="warning", access_log=False, lifespan="on")
    )
    print(f"contrastkit demo: serving on {url}  (Ctrl+C to stop)", flush=True)
    if not args.no_browser:
        threading.Thread(target=_open_when_ready, args=(server, url), daemon=True).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
    return 0
