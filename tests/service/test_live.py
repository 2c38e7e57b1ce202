"""The service against a live server on 127.0.0.1: the contract's operations, the extra reads,
errors, safety limits, identical requests, and restarts that lose no job."""

from __future__ import annotations

import concurrent.futures
import json
import signal
import time
from pathlib import Path

import pytest

from llm_perf_opt.contracts import Wan2_1AnalyticModel, Wan2_1AnalyticRequest, from_json, structure
from llm_perf_opt.errors import LlmPerfOptError
from llm_perf_opt.models import build_deployment
from llm_perf_opt.report.analysis import RunOptions, report_id_for
from llm_perf_opt.report.compare import compare_reports
from llm_perf_opt.report.files import read_report
from tests.service.conftest import LiveServer, tiny, wait_done

RUN = "/analytic/wan2-1/run"


def test_run_is_accepted_and_the_reads_serve_the_report_files_byte_for_byte(
    server: LiveServer, tmp_path: Path
) -> None:
    """202 with the library's report id; once done, the reads are report.json and summary.json exactly."""
    with server.client() as client:
        response = client.post(RUN, params={"device": "h100-sxm"}, json=tiny())
        assert response.status_code == 202
        accepted = response.json()
        deployment = build_deployment("t2v-1.3b", accelerator="h100-sxm")
        expected_id = report_id_for(
            structure(tiny(), Wan2_1AnalyticRequest), RunOptions(deployment=deployment)
        )
        assert accepted["report_id"] == expected_id and accepted["status"] in ("queued", "running")
        assert response.headers["location"] == f"/analytic/wan2-1/{expected_id}/status"
        status = wait_done(client, expected_id)
        assert status["status"] == "done" and status["model_variant"] == "t2v-1.3b"
        folder = Path(server.output_dir) / expected_id
        summary = client.get(f"/analytic/wan2-1/{expected_id}/summary")
        model = client.get(f"/analytic/wan2-1/{expected_id}/model")
    assert summary.status_code == model.status_code == 200
    assert summary.headers["content-type"] == "application/json"
    assert summary.content == (folder / "summary.json").read_bytes()
    assert model.content == (folder / "report.json").read_bytes()
    assert status["predicted_total_time_ms"] == pytest.approx(summary.json()["predicted_total_time_ms"])
    assert summary.json()["predicted_total_time_ms"] > 0
    served = from_json(model.content, Wan2_1AnalyticModel)
    assert served.report_id == expected_id and served.workload.num_frames == 4
    comparison = compare_reports(*[read_report(folder)[0]] * 2)
    assert comparison is not None


@pytest.mark.parametrize(
    ("body", "query"),
    [
        (tiny(num_frames=0), {}),
        ({**tiny(), "colour": "red"}, {}),
        ({**tiny(), "overrides": {"height": "256"}}, {}),
        ({"model_variant": "t2v-1.3b"}, {}),
        ([], {}),
    ],
)
def test_a_bad_body_is_422_with_the_command_line_s_message(
    server: LiveServer, body: object, query: dict[str, str]
) -> None:
    """The detail is the message the contract's converter gives the command line, word for word."""
    with pytest.raises(LlmPerfOptError) as expected:
        from_json(json.dumps(body), Wan2_1AnalyticRequest)
    with server.client() as client:
        response = client.post(RUN, params=query, json=body)
    assert response.status_code == 422
    assert response.json() == {"status_code": 422, "detail": str(expected.value)}


@pytest.mark.parametrize(
    ("body", "query", "detail"),
    [
        ("{not json", {}, "<document>: not valid JSON"),
        (b'{"model_id": "\xff"}', {}, "<document>: not valid JSON (not UTF-8 at byte 14)"),
        (
            json.dumps(tiny(num_frames=4000)),
            {},
            "overrides.num_frames: must be from 1 to 1025 on this server, got 4000",
        ),
        (json.dumps(tiny()), {"device": "tpu-v9"}, "device: unknown device 'tpu-v9'; accepted: a100"),
        (json.dumps(tiny()), {"gpus": "3"}, "gpus: must be one of 1, 2, 4, 8, got '3'"),
        (json.dumps(tiny()), {"colour": "red"}, "colour: unknown query parameter; accepted: implementation"),
        (
            json.dumps({**tiny(), "model_id": "wan2.1-t2v-14b"}),
            {},
            "model_id: 'wan2.1-t2v-14b' does not match",
        ),
        (json.dumps(tiny(height=250)), {}, "height"),
    ],
)
def test_a_bad_request_is_422_and_never_accepted(
    server: LiveServer, body: str | bytes, query: dict[str, str], detail: str
) -> None:
    """Bad JSON, limits, options and what the report would reject are 422 before any job exists."""
    with server.client() as client:
        before = client.get("/analytic/wan2-1/reports", params={"limit": 500}).json()["reports"]
        response = client.post(RUN, params=query, content=body, headers={"content-type": "application/json"})
        after = client.get("/analytic/wan2-1/reports", params={"limit": 500}).json()["reports"]
    assert response.status_code == 422
    assert detail in response.json()["detail"]
    assert len(after) == len(before)


@pytest.mark.parametrize(
    "path",
    [
        "/analytic/wan2-1/t2v-1.3b__wan2-1-720p__0123456789ab/summary",
        "/analytic/wan2-1/t2v-1.3b__wan2-1-720p__0123456789ab/model",
        "/analytic/wan2-1/t2v-1.3b__wan2-1-720p__0123456789ab/status",
        "/analytic/wan2-1/..%2F..%2F..%2Fetc%2Fpasswd/summary",
        "/analytic/wan2-1/%2E%2E/model",
        "/analytic/wan2-1/..__0123456789ab/model",
        "/static/../../store.py",
        "/static/%2E%2E/app.py",
    ],
)
def test_an_unknown_or_malformed_id_is_404_and_reads_no_file(server: LiveServer, path: str) -> None:
    """Ids that are not reports, traversal attempts and unknown assets are 404 JSON errors."""
    with server.client() as client:
        response = client.get(path)
    assert response.status_code == 404
    assert response.json()["status_code"] == 404


def test_identical_concurrent_requests_compute_one_report(server: LiveServer) -> None:
    """Sixteen clients posting one new request at once get one id, and one computation runs."""
    body = tiny(num_frames=9)

    def post(_: int) -> tuple[int, str]:
        with server.client() as client:
            response = client.post(RUN, json=body)
            return response.status_code, response.json()["report_id"]

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(post, range(16)))
    assert {status for status, _ in answers} == {202}
    (report_id,) = {report_id for _, report_id in answers}
    with server.client() as client:
        done = wait_done(client, report_id)
        assert (done["status"], done["attempts"]) == ("done", 1)
        again = client.post(RUN, json=body)
        assert again.status_code == 202 and again.json() == {"report_id": report_id, "status": "queued"}
        assert client.get(f"/analytic/wan2-1/{report_id}/status").json()["attempts"] == 1
        rebuilt = client.post(RUN, json={**body, "force_rebuild": True})
        assert rebuilt.status_code == 202 and rebuilt.json()["report_id"] == report_id
        assert wait_done(client, report_id)["attempts"] == 2


def test_the_extra_reads(server: LiveServer) -> None:
    """Listing, options, health, a formula and the curves answer with what the library says."""
    with server.client() as client:
        report_id = client.post(RUN, json=tiny(num_frames=13)).json()["report_id"]
        wait_done(client, report_id)
        listed = client.get("/analytic/wan2-1/reports", params={"status": "done", "limit": 500}).json()
        options = client.get("/analytic/wan2-1/options").json()
        health = client.get("/health").json()
        formula = client.get(
            "/analytic/wan2-1/formula",
            params={
                "model_variant": "t2v-1.3b",
                "module_id": "diffusion.blocks.0.self_attn",
                "metric": "flops",
            },
        )
        no_module = client.get(
            "/analytic/wan2-1/formula",
            params={"model_variant": "t2v-1.3b", "module_id": "x", "metric": "flops"},
        )
        curve = client.get(
            "/analytic/wan2-1/curve",
            params={
                "model_variant": "t2v-1.3b",
                "num_frames": 17,
                "height": 480,
                "width": 832,
                "num_inference_steps": 50,
                "device": "h100-sxm",
            },
        )
        bad_page = client.get("/analytic/wan2-1/reports", params={"limit": 0})
    assert report_id in [entry["report_id"] for entry in listed["reports"]]
    assert {v["model_variant"] for v in options["variants"]} >= {"t2v-1.3b", "t2v-14b"}
    assert "h100-sxm" in options["devices"] and options["gpu_counts"] == [1, 2, 4, 8]
    assert options["offloads"] == ["none", "model", "group"]
    assert health["status"] == "ok" and health["store"] == "sqlite" and health["schema_version"] == 2
    assert health["jobs"]["done"] >= 1
    assert formula.status_code == 200 and r"\mathrm{frames}" in formula.json()["latex"]
    assert no_module.status_code == 404 and "module_id: no module 'x'" in no_module.json()["detail"]
    assert curve.status_code == 200, curve.text
    from llm_perf_opt.deployment.sizing import estimate

    figures = estimate(
        build_deployment("t2v-1.3b", accelerator="h100-sxm"), frames=17, height=480, width=832, steps=50
    )
    at = curve.json()["at"]
    assert at["seconds"] == pytest.approx(figures.seconds, rel=1e-12)
    assert at["peak_memory_gb"] == pytest.approx(figures.peak_memory_gb, rel=1e-12)
    over_frames = [point["seconds"] for point in curve.json()["over_frames"]]
    assert over_frames == sorted(over_frames) and over_frames[0] < over_frames[-1]
    assert (
        bad_page.status_code == 422 and "limit: must be an integer from 1 to 500" in bad_page.json()["detail"]
    )


def test_body_size_and_cors_limits(server: LiveServer) -> None:
    """A body past the limit is 413; a cross-origin request gets no CORS grant by default."""
    with server.client() as client:
        large = client.post(
            RUN, content=b"{" + b" " * 20000 + b"}", headers={"content-type": "application/json"}
        )
        cross = client.get("/health", headers={"origin": "http://elsewhere.example"})
        preflight = client.options(
            RUN, headers={"origin": "http://elsewhere.example", "access-control-request-method": "POST"}
        )
    assert large.status_code == 413 and large.json()["status_code"] == 413
    assert "access-control-allow-origin" not in cross.headers
    assert "access-control-allow-origin" not in preflight.headers


def test_the_page_and_its_assets_are_served_from_the_package(server: LiveServer) -> None:
    """The explorer, its script and the vendored KaTeX come from the package, not a CDN."""
    with server.client() as client:
        page = client.get("/")
        katex = client.get("/static/katex/katex.min.js")
        font = client.get("/static/katex/fonts/KaTeX_Main-Regular.woff2")
        document = client.get("/openapi.json")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http://" not in page.text and "https://" not in page.text
    assert katex.status_code == 200 and b"katex" in katex.content[:2000].lower()
    assert font.status_code == 200 and font.headers["content-type"] == "font/woff2"
    from llm_perf_opt.service.openapi import served_document

    assert document.json() == served_document()


def test_a_killed_server_s_running_and_queued_jobs_finish_after_a_restart(tmp_path: Path) -> None:
    """SIGKILL while one job runs and two wait: the restarted server computes all three; a run past
    the queue's bound is 503, and an unfinished report's read is 409, both with Retry-After."""
    first = LiveServer(str(tmp_path), tmp_path, "--max-queued", "2")
    try:
        with first.client() as client:
            running = client.post(RUN, json=tiny(num_frames=21)).json()["report_id"]
            wait = 0
            while (
                client.get(f"/analytic/wan2-1/{running}/status").json()["status"] != "running" and wait < 600
            ):
                time.sleep(0.05)
                wait += 1
            # The worker process compiles the variant's formulas for its first report (seconds of
            # CPU), so the job is still running when the server is killed.
            queued = [
                client.post(RUN, json=tiny(num_frames=frames)).json()["report_id"] for frames in (25, 29)
            ]
            full = client.post(RUN, json=tiny(num_frames=33))
            not_ready = client.get(f"/analytic/wan2-1/{queued[0]}/summary")
            statuses = [
                client.get(f"/analytic/wan2-1/{report_id}/status").json()["status"]
                for report_id in (running, *queued)
            ]
    finally:
        first.kill()
    assert statuses == ["running", "queued", "queued"]
    assert full.status_code == 503 and full.headers["retry-after"] == "2"
    assert "2 jobs are waiting, the most this server accepts is 2" in full.json()["detail"]
    assert not_ready.status_code == 409 and not_ready.headers["retry-after"] == "2"
    assert not_ready.json()["detail"] == f"report_id: report {queued[0]!r} is queued"
    second = LiveServer(str(tmp_path), tmp_path)
    try:
        with second.client() as client:
            for report_id in (running, *queued):
                status = wait_done(client, report_id)
                assert status["status"] == "done"
                assert status["attempts"] == (2 if report_id == running else 1)
                assert client.get(f"/analytic/wan2-1/{report_id}/summary").status_code == 200
    finally:
        second.stop()
    assert "requeued 1 jobs of workers that are gone" in "".join(second.output)
    # uvicorn re-raises the signal it shut down on, so a clean stop ends with -SIGTERM.
    assert second.process.returncode in (0, -signal.SIGTERM)
    assert "Traceback" not in "".join(second.output)


def test_postgresql_servers_and_a_separate_worker_share_one_queue(postgres_url: str, tmp_path: Path) -> None:
    """Two API-only servers and one ``--workers-only`` process on PostgreSQL: every job runs once."""
    servers = [LiveServer(postgres_url, tmp_path, "--workers", "0") for _ in range(2)]
    worker = LiveServer(postgres_url, tmp_path, workers_only=True)
    try:
        with servers[0].client() as first, servers[1].client() as second:
            ids = [
                client.post(RUN, json=tiny(num_frames=frames)).json()["report_id"]
                for client, frames in ((first, 33), (second, 37), (first, 41))
            ]
            assert second.post(RUN, json=tiny(num_frames=33)).json()["report_id"] == ids[0]
            for report_id in ids:
                status = wait_done(second, report_id)
                assert (status["status"], status["attempts"]) == ("done", 1)
                assert (
                    first.get(f"/analytic/wan2-1/{report_id}/model").content
                    == (tmp_path / report_id / "report.json").read_bytes()
                )
            health = first.get("/health").json()
            assert (health["store"], health["jobs"]["done"]) == ("postgresql", 3)
    finally:
        worker.stop()
        for server in servers:
            server.stop()


def test_cors_is_granted_only_to_a_configured_origin(tmp_path: Path) -> None:
    """With ``--cors-origin``, that origin gets a grant and another origin still gets none."""
    live = LiveServer(str(tmp_path), tmp_path, "--workers", "0", "--cors-origin", "http://sizing.example")
    try:
        with live.client() as client:
            allowed = client.get("/health", headers={"origin": "http://sizing.example"})
            other = client.get("/health", headers={"origin": "http://elsewhere.example"})
    finally:
        live.stop()
    assert allowed.headers["access-control-allow-origin"] == "http://sizing.example"
    assert "access-control-allow-origin" not in other.headers
