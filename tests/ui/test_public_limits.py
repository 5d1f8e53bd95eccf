"""The public demo's limits, checked in one module (ui/public.py); the browser half is in
tests/e2e/test_public.py."""

from __future__ import annotations

import threading

import pytest

from explainer import settings
from explainer.progress import Done
from ui import jobs, public


@pytest.mark.parametrize(
    ("value", "mode"), [("", "team"), ("team", "team"), ("Public", "public"), ("publik", "public"), (" ", "team")]
)
def test_an_unknown_mode_fails_closed(value, mode):
    assert settings.mode_of(value) == mode


def test_limits_apply_only_in_public_mode(monkeypatch):
    monkeypatch.delenv("LIMA_MODE", raising=False)
    assert public.run_refusal(500, 64, "sam") is None
    monkeypatch.setenv("LIMA_MODE", "public")
    limits = settings.PUBLIC_LIMITS
    assert public.run_refusal(limits.max_regions, limits.max_pending, "grid") is None
    assert "at most 64 regions (65 chosen)" in public.run_refusal(65, 8, "slico")
    assert "pending" in public.run_refusal(10, 9, "slico")
    assert "SAM" in public.run_refusal(10, 8, "sam")


def test_one_active_job_per_visitor(monkeypatch):
    monkeypatch.setenv("LIMA_MODE", "public")
    monkeypatch.setattr(public.state, "session_id", lambda: "visitor-a")
    manager = jobs.JobManager()
    release = threading.Event()

    def slow():
        release.wait(10)
        yield Done(result=1)

    assert public.job_refusal(manager) is None
    manager.submit("job-1", "search", "first", slow, watcher="visitor-a")
    assert "One run at a time per visitor" in public.job_refusal(manager)
    monkeypatch.setattr(public.state, "session_id", lambda: "visitor-b")
    assert public.job_refusal(manager) is None  # another visitor may queue theirs
    release.set()
    manager.shutdown()


def test_uploads_are_limited_per_visitor_per_hour(monkeypatch):
    monkeypatch.setenv("LIMA_MODE", "public")
    kept: dict = {}
    monkeypatch.setattr(public.state, "get", kept.get)
    monkeypatch.setattr(public.state, "put", kept.__setitem__)
    now = [1_000_000.0]
    monkeypatch.setattr(public.time, "time", lambda: now[0])
    limits = settings.PUBLIC_LIMITS
    small = [1024] * (limits.uploads_per_hour - 1)
    assert public.upload_refusal(small) is None
    assert "photos an hour" in public.upload_refusal([1024, 1024])  # one over the allowance
    assert public.upload_refusal([1024]) is None  # the last one of the hour
    assert "photos an hour" in public.upload_refusal([1024])
    now[0] += 3601  # an hour later the allowance is back
    assert public.upload_refusal([1024] * limits.uploads_per_hour) is None
    assert "up to 5 MB" in public.upload_refusal([limits.max_upload_mb * 1024 * 1024 + 1])
