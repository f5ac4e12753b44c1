"""`pipeline run` is one self-contained worker, whatever the shell exports for split deployments."""

from __future__ import annotations

from contextlib import nullcontext

from pipeline import demo
from pipeline.settings import STAGES, Settings


def test_demo_worker_runs_every_stage_even_when_worker_stages_is_exported(monkeypatch, tmp_path):
    monkeypatch.setenv("WORKER_STAGES", "enrich")
    started = []
    monkeypatch.setattr(demo, "EmbeddedStack", lambda settings, persistent: nullcontext())
    monkeypatch.setattr(demo, "run_worker", lambda settings, extra: started.append(settings))
    demo.run_demo(Settings(data_dir=tmp_path), sample=tmp_path / "sample.jsonl", persistent=True, speed=1.0)
    assert [settings.worker_stages for settings in started] == [STAGES]
