"""The ``serve`` command: run the HTTP server (and its workers), or only workers of a shared store.

``register(subparsers)`` adds it to a command line; :func:`main` runs it alone (``python -m
llm_perf_opt.service``). Bad options are one :class:`~llm_perf_opt.errors.LlmPerfOptError` naming
the option, the value and what is accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from llm_perf_opt.errors import LlmPerfOptError

__all__ = ["handler", "main", "register"]

DEFAULT_STORE = "service"


def _integer(low: int, high: int) -> Any:
    def parse(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be an integer from {low} to {high}, got {text!r}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be an integer from {low} to {high}, got {value}")
        return value

    return parse


def register(subparsers: Any) -> None:
    """Add the ``serve`` sub-command to ``subparsers`` (from ``add_subparsers``)."""
    serve = subparsers.add_parser(
        "serve",
        help="serve the analytic contract over HTTP, with a job queue and the explorer page",
        description="Serve the analytic contract over HTTP (default http://127.0.0.1:8000/).",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1, loopback only)"
    )
    serve.add_argument(
        "--port", type=_integer(0, 65535), default=8000, help="port (default 8000; 0: any free)"
    )
    serve.add_argument(
        "--store",
        default=DEFAULT_STORE,
        help="store URL (sqlite:///FILE, postgresql://…) or a folder (its service.sqlite3 and reports); "
        f"default ./{DEFAULT_STORE}",
    )
    serve.add_argument(
        "--reports",
        type=Path,
        default=None,
        help="folder of the report folders (default: the store's folder; ./reports for postgresql)",
    )
    serve.add_argument(
        "--workers",
        type=_integer(0, 64),
        default=1,
        help="jobs computed at once by this process (0: API only)",
    )
    serve.add_argument(
        "--workers-only", action="store_true", help="no HTTP: only compute the jobs of a shared store"
    )
    serve.add_argument("--max-queued", type=_integer(1, 100_000), default=256, help="waiting jobs before 503")
    serve.add_argument(
        "--cors-origin",
        action="append",
        default=[],
        metavar="ORIGIN",
        help="allow cross-origin requests from ORIGIN (repeatable; default: CORS off)",
    )
    serve.set_defaults(func=handler)


def _reports_dir(store: str, reports: Path | None) -> Path:
    if reports is not None:
        return reports
    if store.startswith(("postgresql://", "postgres://")):
        return Path("reports")
    if store.startswith("sqlite:///"):
        return Path(store.removeprefix("sqlite:///")).parent
    return Path(store)


def _config(args: argparse.Namespace) -> Any:
    from llm_perf_opt.service.app import ServiceConfig

    for origin in args.cors_origin:
        if not origin.startswith(("http://", "https://")):
            raise LlmPerfOptError(f"--cors-origin: must be an http:// or https:// origin, got {origin!r}")
    return ServiceConfig(
        store=args.store,
        reports_dir=_reports_dir(args.store, args.reports),
        worker_slots=args.workers,
        max_queued=args.max_queued,
        cors_origins=tuple(args.cors_origin),
    )


async def _workers_only(config: Any) -> None:
    from llm_perf_opt.service.store import open_store
    from llm_perf_opt.service.workers import WorkerPool

    if config.worker_slots < 1:
        raise LlmPerfOptError("--workers: --workers-only needs at least 1 worker, got 0")
    store = await asyncio.to_thread(open_store, config.store)
    config.reports_dir.mkdir(parents=True, exist_ok=True)
    pool = WorkerPool(store, config.reports_dir, slots=config.worker_slots, lease_s=config.lease_s)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, lambda: asyncio.ensure_future(pool.stop()))
    await pool.start()
    print(f"llm-perf-opt: workers of {store.kind} store, {config.worker_slots} slot(s)", flush=True)
    try:
        await pool.wait()
    finally:
        await pool.stop()
        store.close()


def handler(args: argparse.Namespace) -> int:
    """Run ``serve`` until interrupted; 0 when it stops cleanly."""
    try:
        import uvicorn

        from llm_perf_opt.service.app import create_app
    except ImportError as error:
        raise LlmPerfOptError(
            f"serve: needs the service extra (pip install 'llm-perf-opt[service]'): {error}"
        ) from None
    try:
        ipaddress.ip_address(args.host)
    except ValueError:
        if args.host != "localhost":
            raise LlmPerfOptError(f"--host: must be an IP address or localhost, got {args.host!r}") from None
    config = _config(args)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.workers_only:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_workers_only(config))
        return 0
    from llm_perf_opt.service.store import open_store

    open_store(config.store).close()  # a bad store is an error before the server binds
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=args.host,
            port=args.port,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=10,
        )
    )
    original_startup = server.startup

    async def startup(sockets: Any = None) -> None:
        await original_startup(sockets=sockets)
        for listener in server.servers:
            for sock in listener.sockets:
                host, port = sock.getsockname()[:2]
                print(f"llm-perf-opt: serving on http://{host}:{port}/", flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m llm_perf_opt.service [serve options]``."""
    parser = argparse.ArgumentParser(prog="python -m llm_perf_opt.service")
    commands = parser.add_subparsers(dest="command")
    register(commands)
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not arguments or arguments[0] != "serve":
        arguments.insert(0, "serve")
    args = parser.parse_args(arguments)
    try:
        return int(args.func(args))
    except LlmPerfOptError as error:
        print(f"llm-perf-opt: error: {error}", file=sys.stderr)
        return 2
