"""The ASGI application: the contract's three operations, the service's reads, and the explorer.

Bodies go through the project's one cattrs converter, so a report read over HTTP is byte for byte
the ``report.json`` / ``summary.json`` the command line writes. Every error is one JSON object
``{"status_code": …, "detail": …}`` whose detail names the field, the bad value and what is
accepted, as on the command line.

Safety: a report id must match :data:`REPORT_ID_PATTERN` before any file is touched (no path
traversal: the id is one folder name of a fixed alphabet); request bodies are capped
(``max_body_bytes``) and overrides bounded (:data:`~.compute.OVERRIDE_MAXIMUMS`); no endpoint reads
a path the client names; the queue is bounded (503 with ``Retry-After`` past it); CORS is off
unless origins are configured; static files come from a fixed list of shipped assets.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Final, TypeVar

import attrs
import yaml
from attrs import frozen
from litestar import Litestar, Request, Response, get, post
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.exceptions import HTTPException

from llm_perf_opt.contracts import from_json, to_json
from llm_perf_opt.contracts.models import Wan2_1AnalyticAccepted, Wan2_1AnalyticRequest
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.report.files import REPORT_FILE, SUMMARY_FILE
from llm_perf_opt.service import compute
from llm_perf_opt.service.compute import REPORT_ID_PATTERN
from llm_perf_opt.service.openapi import served_document, served_json
from llm_perf_opt.service.store import JOB_STATUSES, Job, QueueFullError, Store, open_store
from llm_perf_opt.service.workers import DEFAULT_LEASE_S, WorkerPool

__all__ = ["ServiceConfig", "create_app"]

T = TypeVar("T")

_JSON: Final = "application/json"
_RETRY_AFTER_S: Final = 2

_log = logging.getLogger("llm_perf_opt.service")


def _positive(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise LlmPerfOptError(f"{attribute.name}: must be an integer ≥ 1, got {value!r}")


def _non_negative(_: object, attribute: attrs.Attribute[Any], value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise LlmPerfOptError(f"{attribute.name}: must be an integer ≥ 0, got {value!r}")


def _absolute(path: str | Path) -> Path:
    return Path(path).absolute()


@frozen(kw_only=True)
class ServiceConfig:
    """One server's settings.

    Attributes:
        store: the store's URL (``sqlite:///…``, ``postgresql://…``) or a folder.
        reports_dir: where report folders are written and read.
        worker_slots: jobs computed at once by this process (0: an API-only server).
        max_queued: waiting jobs past which a run is answered 503.
        max_body_bytes: the largest request body accepted.
        cors_origins: origins allowed cross-origin requests (empty: CORS off).
        lease_s: how long a worker's claim lasts without renewal.
        poll_s: how often an idle worker looks for jobs queued by other processes.
    """

    store: str
    reports_dir: Path = attrs.field(converter=_absolute)
    worker_slots: int = attrs.field(default=1, validator=_non_negative)
    max_queued: int = attrs.field(default=256, validator=_positive)
    max_body_bytes: int = attrs.field(default=16 * 1024, validator=_positive)
    cors_origins: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    lease_s: float = DEFAULT_LEASE_S
    poll_s: float = 1.0


class _Service:
    """The running server's state: config, store, worker pool and a small cache of report bodies."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self.store: Store | None = None
        self.pool: WorkerPool | None = None
        self._cache: collections.OrderedDict[str, tuple[tuple[tuple[int, int], ...], bytes, bytes]] = (
            collections.OrderedDict()
        )
        self._cache_lock = threading.Lock()

    def forget(self, report_id: str) -> None:
        with self._cache_lock:
            self._cache.pop(report_id, None)

    def bodies(self, report_id: str) -> tuple[bytes, bytes] | None:
        """The report's ``report.json`` and ``summary.json`` bytes, or ``None`` while the folder
        does not hold both.

        The files are served as written: the library writes each one atomically (a temporary
        name, then a rename), and ``summary.json`` after ``report.json``, so a folder with both is
        a finished report. Bodies are cached per version of the files (modification time, size).
        """
        folder = self.config.reports_dir / report_id
        try:
            stats = [(folder / name).stat() for name in (REPORT_FILE, SUMMARY_FILE)]
        except OSError:
            return None
        signature = tuple((stat.st_mtime_ns, stat.st_size) for stat in stats)
        with self._cache_lock:
            cached = self._cache.get(report_id)
            if cached is not None and cached[0] == signature:
                self._cache.move_to_end(report_id)
                return cached[1], cached[2]
        try:
            bodies = ((folder / REPORT_FILE).read_bytes(), (folder / SUMMARY_FILE).read_bytes())
        except OSError:
            return None
        with self._cache_lock:
            self._cache[report_id] = (signature, *bodies)
            while len(self._cache) > 32:
                self._cache.popitem(last=False)
        return bodies


def _service(request: Request[Any, Any, Any]) -> _Service:
    service: _Service = request.app.state["service"]
    return service


def _store(request: Request[Any, Any, Any]) -> Store:
    store = _service(request).store
    assert store is not None
    return store


def _json_response(
    content: bytes | object, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response[bytes]:
    body = content if isinstance(content, bytes) else to_json(content, indent=None).encode()
    return Response(content=body, status_code=status_code, media_type=_JSON, headers=dict(headers or {}))


def _error(status_code: int, detail: str, headers: Mapping[str, str] | None = None) -> Response[bytes]:
    return _json_response(
        _plain_json({"status_code": status_code, "detail": detail}), status_code=status_code, headers=headers
    )


def _plain_json(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, allow_nan=False).encode()


def _query(request: Request[Any, Any, Any]) -> dict[str, str]:
    """The query parameters, each given once."""
    values: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key in values:
            raise LlmPerfOptError(f"{key}: given more than once")
        values[key] = value
    return values


def _utf8(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise LlmPerfOptError(f"<document>: not valid JSON (not UTF-8 at byte {error.start})") from None


def _split(query: dict[str, str], names: tuple[str, ...]) -> dict[str, str]:
    return {name: query.pop(name) for name in names if name in query}


def _check_id(report_id: str) -> None:
    if not REPORT_ID_PATTERN.fullmatch(report_id):
        raise HTTPException(status_code=404, detail=f"report_id: no report {report_id!r} (not a report id)")


def _job_json(job: Job) -> dict[str, Any]:
    return {
        "report_id": job.report_id,
        "status": job.status,
        "error": job.error,
        "attempts": job.attempts,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "finished_at": job.finished_at,
        "model_variant": job.model_variant,
        "workload_profile_id": job.workload_profile_id,
        "predicted_total_time_ms": job.predicted_total_time_ms,
    }


def _not_ready(report_id: str, job: Job | None) -> Response[bytes]:
    if job is None:
        return _error(404, f"report_id: no report {report_id!r}")
    reason = f"; error: {job.error}" if job.status == "failed" and job.error else ""
    return _error(
        409,
        f"report_id: report {report_id!r} is {job.status}{reason}",
        headers={"Retry-After": str(_RETRY_AFTER_S)},
    )


@post("/analytic/wan2-1/run", status_code=202)
async def run_report(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The contract's run: check the request, record its job, answer 202; a worker computes it."""
    service = _service(request)
    body = await request.body()
    if len(body) > service.config.max_body_bytes:
        return _error(413, f"<document>: {len(body)} bytes, at most {service.config.max_body_bytes} accepted")
    try:
        query = _query(request)
        options = compute.run_options(query)
        analytic_request = from_json(_utf8(body), Wan2_1AnalyticRequest)
        compute.check_request(analytic_request, options)
    except LlmPerfOptError as error:
        return _error(422, str(error))
    report_id = compute.report_id(analytic_request, options)
    folder_has_report = (service.config.reports_dir / report_id / REPORT_FILE).is_file()
    store = _store(request)
    try:
        submission = await asyncio.to_thread(
            functools.partial(
                store.submit,
                report_id,
                compute.request_json(analytic_request),
                compute.options_json(options),
                rebuild=analytic_request.force_rebuild or not folder_has_report,
                max_queued=service.config.max_queued,
            )
        )
    except QueueFullError as error:
        return _error(503, str(error), headers={"Retry-After": str(_RETRY_AFTER_S)})
    if submission.queued_now:
        service.forget(report_id)
        if service.pool is not None:
            service.pool.wake()
    accepted = Wan2_1AnalyticAccepted(
        report_id=report_id, status="running" if submission.status == "running" else "queued"
    )
    return _json_response(
        accepted, status_code=202, headers={"Location": f"/analytic/wan2-1/{report_id}/status"}
    )


async def _read(request: Request[Any, Any, Any], report_id: str, which: int) -> Response[bytes]:
    _check_id(report_id)
    service = _service(request)
    bodies = await asyncio.to_thread(service.bodies, report_id)
    if bodies is not None:
        return _json_response(bodies[which])
    job = await asyncio.to_thread(_store(request).job, report_id)
    return _not_ready(report_id, job)


@get("/analytic/wan2-1/{report_id:str}/summary")
async def read_summary(request: Request[Any, Any, Any], report_id: str) -> Response[bytes]:
    """The contract's summary read: ``summary.json`` of a finished report."""
    return await _read(request, report_id, 1)


@get("/analytic/wan2-1/{report_id:str}/model")
async def read_model(request: Request[Any, Any, Any], report_id: str) -> Response[bytes]:
    """The contract's model read: ``report.json`` of a finished report."""
    return await _read(request, report_id, 0)


@get("/analytic/wan2-1/{report_id:str}/status")
async def read_status(request: Request[Any, Any, Any], report_id: str) -> Response[bytes]:
    """A job's status; a report folder with no job (written by the command line) is ``done``."""
    _check_id(report_id)
    job = await asyncio.to_thread(_store(request).job, report_id)
    if job is not None:
        return _json_response(_plain_json(_job_json(job)))
    if await asyncio.to_thread(_service(request).bodies, report_id) is not None:
        done = {"report_id": report_id, "status": "done", "error": None, "attempts": 0}
        return _json_response(_plain_json(done))
    return _error(404, f"report_id: no report {report_id!r}")


async def _compute(request: Request[Any, Any, Any], function: Callable[..., T], *args: object) -> T:
    """A CPU-bound computation off the event loop: in the worker processes, or a thread without them."""
    pool = _service(request).pool
    if pool is not None:
        return await pool.call(function, *args)
    return await asyncio.to_thread(function, *args)


def _bounded_int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.pop(name, None)
    if text is None:
        return default
    if not text.isascii() or not text.isdigit() or not low <= int(text) <= high:
        raise LlmPerfOptError(f"{name}: must be an integer from {low} to {high}, got {text!r}")
    return int(text)


def _no_more(query: dict[str, str], accepted: tuple[str, ...]) -> None:
    if query:
        name = sorted(query)[0]
        raise LlmPerfOptError(f"{name}: unknown query parameter; accepted: {', '.join(accepted)}")


@get("/analytic/wan2-1/reports")
async def list_reports(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The jobs and their reports, newest first, one page at a time."""
    try:
        query = _query(request)
        status = query.pop("status", None)
        if status is not None and status not in JOB_STATUSES:
            raise LlmPerfOptError(f"status: unknown status {status!r}; accepted: {', '.join(JOB_STATUSES)}")
        limit = _bounded_int(query, "limit", 50, 1, 500)
        offset = _bounded_int(query, "offset", 0, 0, 1_000_000_000)
        _no_more(query, ("status", "limit", "offset"))
    except LlmPerfOptError as error:
        return _error(422, str(error))
    jobs = await asyncio.to_thread(
        functools.partial(_store(request).jobs, status=status, limit=limit, offset=offset)
    )
    return _json_response(
        _plain_json({"reports": [_job_json(job) for job in jobs], "limit": limit, "offset": offset})
    )


@get("/analytic/wan2-1/options")
async def read_options(request: Request[Any, Any, Any]) -> Response[bytes]:
    """What a request may choose, and the server's limits."""
    catalogue = compute.catalogue()
    catalogue["limits"] = {
        "max_body_bytes": _service(request).config.max_body_bytes,
        "max_queued": _service(request).config.max_queued,
    }
    return _json_response(_plain_json(catalogue))


_CURVE_FIELDS: Final = ("model_variant", "num_frames", "height", "width", "num_inference_steps")


@get("/analytic/wan2-1/curve")
async def read_curve(request: Request[Any, Any, Any]) -> Response[bytes]:
    """Predicted time and peak memory over frame counts and heights, for the explorer's curves."""
    try:
        query = _query(request)
        variant = query.pop("model_variant", None)
        if variant is None:
            raise LlmPerfOptError("model_variant: required")
        frames = _bounded_int(query, "num_frames", -1, 1, 1025)
        height = _bounded_int(query, "height", -1, 16, 4096)
        width = _bounded_int(query, "width", -1, 16, 4096)
        steps = _bounded_int(query, "num_inference_steps", -1, 1, 1000)
        for name, value in (
            ("num_frames", frames),
            ("height", height),
            ("width", width),
            ("num_inference_steps", steps),
        ):
            if value < 0:
                raise LlmPerfOptError(f"{name}: required")
        options = compute.run_options(query)
        if options.device is None:
            raise LlmPerfOptError("device: required")
        curve = await _compute(
            request,
            functools.partial(
                compute.curve, options, variant, frames=frames, height=height, width=width, steps=steps
            ),
        )
    except LlmPerfOptError as error:
        return _error(422, str(error))
    return _json_response(_plain_json(curve))


@get("/analytic/wan2-1/formula")
async def read_formula(request: Request[Any, Any, Any]) -> Response[bytes]:
    """One module's metric as LaTeX (and text) from the library's formula view."""
    try:
        query = _query(request)
        fields = _split(query, ("model_variant", "module_id", "metric"))
        for name in ("model_variant", "module_id", "metric"):
            if name not in fields:
                raise LlmPerfOptError(f"{name}: required")
        options = _split(query, ("implementation", "guidance"))
        _no_more(query, ("model_variant", "module_id", "metric", "implementation", "guidance"))
        run_options = compute.run_options(options)
        result = await _compute(
            request,
            compute.module_formula,
            fields["model_variant"],
            run_options.implementation,
            run_options.guidance,
            fields["module_id"],
            fields["metric"],
        )
    except compute.UnknownModuleError as error:
        return _error(404, str(error))
    except LlmPerfOptError as error:
        return _error(422, str(error))
    return _json_response(_plain_json(result))


@get("/health")
async def health(request: Request[Any, Any, Any]) -> Response[bytes]:
    """The server is up: its store, schema version and jobs by status."""
    store = _store(request)
    counts, version = await asyncio.to_thread(lambda: (store.counts(), store.schema_version()))
    return _json_response(
        _plain_json(
            {
                "status": "ok",
                "store": store.kind,
                "schema_version": version,
                "jobs": counts,
                "worker_slots": _service(request).config.worker_slots,
            }
        )
    )


@get("/openapi.json")
async def openapi_json() -> Response[bytes]:
    """The served OpenAPI document: the contract plus the service's additions."""
    return _json_response(served_json())


@get("/openapi.yaml")
async def openapi_yaml() -> Response[str]:
    """The served OpenAPI document as YAML."""
    return Response(
        content=yaml.safe_dump(served_document(), sort_keys=False, allow_unicode=True),
        media_type="application/yaml",
    )


_MEDIA_TYPES: Final[Mapping[str, str]] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".woff2": "font/woff2",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}


@functools.cache
def _assets() -> Mapping[str, tuple[bytes, str]]:
    """Every shipped static file by its path under ``static/``, read once."""
    root = resources.files("llm_perf_opt.service").joinpath("static")
    found: dict[str, tuple[bytes, str]] = {}

    def walk(folder: Any, prefix: str) -> None:
        for entry in folder.iterdir():
            if entry.is_dir():
                walk(entry, f"{prefix}{entry.name}/")
            else:
                suffix = Path(entry.name).suffix
                if suffix in _MEDIA_TYPES:
                    found[f"{prefix}{entry.name}"] = (entry.read_bytes(), _MEDIA_TYPES[suffix])

    walk(root, "")
    return found


@get("/")
async def explorer() -> Response[bytes]:
    """The explorer page."""
    content, media_type = _assets()["index.html"]
    return Response(content=content, media_type=media_type)


@get("/static/{name:path}")
async def static_file(name: str) -> Response[bytes]:
    """One shipped asset (a fixed list: no path is read from the request)."""
    asset = _assets().get(name.lstrip("/"))
    if asset is None:
        return _error(404, f"static: no asset {name!r}")
    return Response(content=asset[0], media_type=asset[1], headers={"Cache-Control": "max-age=3600"})


def _http_error(_: Request[Any, Any, Any], error: HTTPException) -> Response[bytes]:
    headers = dict(error.headers or {})
    return _error(error.status_code, str(error.detail), headers=headers)


def _internal_error(_: Request[Any, Any, Any], error: Exception) -> Response[bytes]:
    _log.exception("internal error", exc_info=error)
    return _error(500, f"internal error: {type(error).__name__}")


def _lifespan(service: _Service) -> Callable[[Litestar], contextlib.AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        config = service.config
        service.store = await asyncio.to_thread(open_store, config.store)
        config.reports_dir.mkdir(parents=True, exist_ok=True)
        if config.worker_slots:
            service.pool = WorkerPool(
                service.store,
                config.reports_dir,
                slots=config.worker_slots,
                lease_s=config.lease_s,
                poll_s=config.poll_s,
                on_done=service.forget,
            )
            await service.pool.start()
        try:
            yield
        finally:
            if service.pool is not None:
                await service.pool.stop()
            service.store.close()

    return lifespan


def create_app(config: ServiceConfig) -> Litestar:
    """The application of one server; the store opens (and migrates) when it starts."""
    service = _Service(config)
    cors = CORSConfig(allow_origins=list(config.cors_origins)) if config.cors_origins else None
    return Litestar(
        route_handlers=[
            run_report,
            read_summary,
            read_model,
            read_status,
            list_reports,
            read_options,
            read_curve,
            read_formula,
            health,
            openapi_json,
            openapi_yaml,
            explorer,
            static_file,
        ],
        openapi_config=None,
        cors_config=cors,
        request_max_body_size=config.max_body_bytes,
        exception_handlers={HTTPException: _http_error, Exception: _internal_error},
        lifespan=[_lifespan(service)],
        state=_state(service),
    )


def _state(service: _Service) -> State:
    return State({"service": service})
