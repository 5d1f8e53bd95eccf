"""Settings and option specs are worked out once, yet still follow the environment."""

from __future__ import annotations

from explainer import settings
from explainer.config import SearchOptions


def test_settings_follow_the_environment_at_call_time(tmp_path, monkeypatch):
    monkeypatch.setenv("LIMA_RUNS_DIR", str(tmp_path / "a"))
    first = settings.current()
    assert first.runs_dir == (tmp_path / "a").resolve()
    assert settings.current() is first  # the same environment: resolved once
    monkeypatch.setenv("LIMA_RUNS_DIR", str(tmp_path / "b"))
    assert settings.current().runs_dir == (tmp_path / "b").resolve()
    monkeypatch.setenv("LIMA_MODE", "public")
    assert settings.current().mode == "public"
    monkeypatch.delenv("LIMA_RUNS_DIR")
    assert settings.current().runs_dir == settings.current().cache_dir / "runs"


def test_option_specs_are_kept_per_class_and_cannot_be_changed_by_a_caller():
    specs = SearchOptions.specs()
    names = [f.name for f in specs]
    specs.clear()  # a caller's list is its own
    assert [f.name for f in SearchOptions.specs()] == names and "pending" in names
    assert SearchOptions.field("pending").default == SearchOptions().pending
