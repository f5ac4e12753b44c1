"""Alerts reach people: a worker on the embedded stack, the bridge, Debian's Alertmanager with the
shipped config (timings shortened) and the example webhook receiver; then Debian's Prometheus
with the shipped alerting block and a shipped rule, to the same receiver.

The shipped hk watch sees the sample's crisis as critical from its first window; the test's copy
of it uses 30-minute windows and severity by ratio, so the same crisis opens as a warning,
escalates to critical and resolves — an update a silence can mute.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import threading
import urllib.request
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from pipeline.alerting.watches import load_watches
from pipeline.backtest import run_watches
from pipeline.notify.alertmanager import AlertmanagerClient, silence_alert, silences_by_alert_id
from pipeline.notify.webhook import WebhookReceiver, serve
from pipeline.samples.generate import generate
from pipeline.settings import PROJECT_ROOT, Settings, Topics
from pipeline.stack import free_port, wait_for_port
from pipeline.stages import EnrichStage, RawRecord
from pipeline.testing import WorkerProcess, post_messages, produce, wait_until
from pipeline.topics import ensure_topics
from pipeline.worker import load_analyser

pytestmark = pytest.mark.integration

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
PROMETHEUS = shutil.which("prometheus")
DEPLOY = PROJECT_ROOT / "deploy"
TOKEN = "test-webhook-token"
DASHBOARD = "http://dashboard.test:6066"
ESCALATING_RULES = {
    "window": "30m", "allowed_lateness": "5m",
    "volume_surge": {"min_count": 4}, "negative_surge": {"min_count": 4},
    "severity": {"critical_score": 0.99, "warning_ratio": 3.0, "critical_ratio": 12.0},
}  # fmt: skip


def escalating_watch(directory: Path) -> Path:
    watch = yaml.safe_load((PROJECT_ROOT / "models" / "watches" / "hk_mainland_tourists.yaml").read_text())
    for name, value in ESCALATING_RULES.items():
        watch["rules"][name] = {**watch["rules"][name], **value} if isinstance(value, dict) else value
    directory.mkdir()
    (directory / "hk_mainland_tourists.yaml").write_text(yaml.safe_dump(watch, allow_unicode=True))
    return directory


def expected_transitions(settings: Settings, posts) -> list:
    """What the engine will emit on the sample (the backtest equals the live run, see test_live_vs_backtest)."""
    stage = EnrichStage(settings, load_analyser(settings))
    out = stage.enrich([RawRecord(p.encode(), "posts.raw", 0, i) for i, p in enumerate(posts)])
    return run_watches(out.enriched, load_watches(settings.watches_dir))


def alertmanager_config(path: Path, receiver_port: int, token_file: Path) -> Path:
    """The shipped config with the test's receiver (webhooks only: no SMTP here) and seconds-long timings."""
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    config["templates"] = [str(DEPLOY / "alertmanager" / "templates" / "*.tmpl")]
    for receiver in config["receivers"]:
        receiver.pop("email_configs")
        for webhook in receiver["webhook_configs"]:
            webhook["url"] = webhook["url"].replace("http://desk-webhook:8080", f"http://127.0.0.1:{receiver_port}")
            webhook["http_config"]["authorization"]["credentials_file"] = str(token_file)

    def shorten(route: dict, timings: dict[str, str]) -> None:
        route.update({name: value for name, value in timings.items() if name in route})
        for child in route.get("routes", []):
            shorten(child, timings)

    shorten(config["route"], {"group_wait": "1s", "group_interval": "1s", "repeat_interval": "1h"})
    assert config["route"]["group_wait"] == config["route"]["group_interval"] == "1s"
    path.write_text(yaml.safe_dump(config))
    return path


class ReceiverThread:
    """The example webhook receiver on its own event loop, as a separate service would run."""

    def __init__(self, port: int):
        self.receiver = WebhookReceiver(token=TOKEN)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.runner = asyncio.run_coroutine_threadsafe(serve(self.receiver, "127.0.0.1", port), self.loop).result(10)

    def about(self, alert_id: str) -> list:
        return [(path, n) for path, n in list(self.receiver.notifications) if any(a.labels.get("alert_id") == alert_id for a in n.alerts)]

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)


def started(argv: list[str], port: int, log: Path) -> subprocess.Popen:
    process = subprocess.Popen(argv, stdout=log.open("wb"), stderr=subprocess.STDOUT)
    wait_for_port("127.0.0.1", port, 30, process)
    return process


def held(alertmanager_url: str, alert_id: str) -> list[dict]:
    async def get() -> list[dict]:
        async with AlertmanagerClient(alertmanager_url) as alertmanager:
            return await alertmanager.alerts([f'alert_id="{alert_id}"'])

    return asyncio.run(get())


def test_the_crisis_reaches_the_desk_once_a_silence_mutes_its_escalation_and_the_resolve_ends_it(
    make_settings, worker_factory, tmp_path
):
    am_port, receiver_port, bridge_metrics = free_port(), free_port(), free_port()
    alertmanager_url = f"http://127.0.0.1:{am_port}"
    settings = make_settings(
        watches_dir=escalating_watch(tmp_path / "watches"),
        alert_idle_flush_s=600.0,  # the parts are fed seconds apart: no lane may be retired meanwhile
        alertmanager_url=alertmanager_url,
        alertmanager_resend_s=2.0,  # re-posts during the test must not notify again
        dashboard_url=DASHBOARD,
    )
    asyncio.run(ensure_topics(settings))
    posts = generate(seed=7, count=600)
    opened, escalated, resolved = expected_transitions(settings, posts)
    assert (opened.state.value, escalated.state.value, resolved.state.value) == ("open", "updated", "resolved")
    assert (opened.severity, escalated.severity) == ("warning", "critical") and opened.id == escalated.id == resolved.id

    token_file = tmp_path / "webhook_token"
    token_file.write_text(TOKEN)
    config = alertmanager_config(tmp_path / "alertmanager.yml", receiver_port, token_file)
    receiver = ReceiverThread(receiver_port)
    alertmanager = started(
        [ALERTMANAGER, f"--config.file={config}", f"--storage.path={tmp_path / 'am'}",
         f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],  # fmt: skip
        am_port, tmp_path / "alertmanager.log",
    )
    prometheus = None
    try:
        worker = worker_factory(settings)
        bridge = WorkerProcess(settings.model_copy(update={"metrics_port": bridge_metrics}), tmp_path / "bridge.log", command="bridge").start()
        try:
            # 1. posts up to the escalating window: the crisis opens as a warning and reaches the hk desk once
            asyncio.run(produce(settings, Topics.RAW, post_messages([p for p in posts if p.created_at < escalated.window_end])))
            wait_until(lambda: receiver.about(opened.id), 120, "the opened crisis reached the receiver")
            ((path, notification),) = receiver.about(opened.id)
            assert path == "/hk-desk" and notification.status == "firing"
            (notified,) = notification.alerts
            assert notified.labels == {
                "alertname": "PdSurge", "alert_id": opened.id, "watch": "hk_mainland_tourists", "key": "all",
                "kind": "surge", "severity": "warning",
            }  # fmt: skip
            assert notified.startsAt.startswith(opened.opened_at.strftime("%Y-%m-%dT%H:%M:%S"))
            assert notified.generatorURL == f"{DASHBOARD}/?alert={opened.id}"
            assert notified.annotations["summary"].startswith("hk_mainland_tourists/all: ") and notified.annotations["sample_posts"]

            # 2. an analyst acknowledges it: a silence through Alertmanager's API (as the dashboard makes it)
            silence_id = asyncio.run(silence_alert(alertmanager_url, opened.id, created_by="desk officer", comment="on it", duration=timedelta(hours=1)))
            asyncio.run(produce(settings, Topics.RAW, post_messages([p for p in posts if escalated.window_end <= p.created_at < resolved.window_end])))

            def in_alertmanager() -> list[tuple[str, list[str]]]:
                return [(a["labels"]["severity"], a["status"]["silencedBy"]) for a in held(alertmanager_url, opened.id)]

            wait_until(lambda: ("critical", [silence_id]) in in_alertmanager(), 60, "the escalation, muted by the silence")
            # the warning was ended in the same request (left alone, it would fire on for 4 resend intervals)
            assert in_alertmanager() == [("critical", [silence_id])]
            muted = asyncio.run(silences_by_alert_id(alertmanager_url))
            assert [s.id for s in muted[opened.id]] == [silence_id] and muted[opened.id][0].comment == "on it"

            # 3. the rest of the sample resolves it: Alertmanager holds nothing of it any more
            asyncio.run(produce(settings, Topics.RAW, post_messages([p for p in posts if p.created_at >= resolved.window_end])))
            wait_until(lambda: not held(alertmanager_url, opened.id), 60, "the resolve ended the alert in Alertmanager")
            assert [bridge.metric("pd_bridge_transitions_total", state=s) for s in ("open", "updated", "resolved")] == [1, 1, 1]

            # 4. Prometheus' own rule (shipped expression, `for` shortened) reaches the same receiver;
            # by then every group of the crisis has been flushed many times over (1 s intervals)
            prometheus = start_prometheus(tmp_path, am_port, worker_port=settings.metrics_port, bridge_port=bridge_metrics)
            wait_until(lambda: operators_heard(receiver), 90, "PdWorkersMissing reached the operators' receiver")
            assert len(receiver.about(opened.id)) == 1, "the escalation and the resolve stayed muted"
            assert worker.process.poll() is None
        finally:
            bridge.stop()
    finally:
        if prometheus is not None:
            prometheus.terminate()
            prometheus.wait(10)
        alertmanager.terminate()
        alertmanager.wait(10)
        receiver.stop()


def start_prometheus(tmp_path: Path, am_port: int, worker_port: int, bridge_port: int) -> subprocess.Popen:
    """Shipped prometheus.yml (alerting block, jobs) and PdWorkersMissing from rules.yml; the test's
    deployment expects two workers and runs one. (A resend delay of 1 s: Prometheus drops an alert
    that fires before it has discovered its Alertmanager and sends it again a minute later.)"""
    config = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{am_port}"]}]
    ports = {"pd-worker": worker_port, "pd-bridge": bridge_port}
    for job in config["scrape_configs"]:
        job["static_configs"] = [{"targets": [f"127.0.0.1:{ports[job['job_name']]}"]}]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "rules.yml").read_text())
    (missing,) = [r for g in rules["groups"] for r in g["rules"] if r.get("alert") == "PdWorkersMissing"]
    expected = yaml.safe_load((DEPLOY / "prometheus" / "targets.yml").read_text())
    for rule in expected["groups"][0]["rules"]:
        if rule["labels"]["job"] == "pd-worker":
            rule["expr"] = "vector(2)"
    (tmp_path / "rules.yml").write_text(yaml.safe_dump({"groups": [{"name": "test", "rules": [{**missing, "for": "0s"}]}]}))
    (tmp_path / "targets.yml").write_text(yaml.safe_dump(expected))
    config["rule_files"] = [str(tmp_path / "rules.yml"), str(tmp_path / "targets.yml")]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    return started(
        [PROMETHEUS, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}", "--rules.alert.resend-delay=1s"],  # fmt: skip
        port, tmp_path / "prometheus.log",
    )


def operators_heard(receiver: ReceiverThread) -> bool:
    return any(
        path == "/operators" and alert.labels.get("alertname") == "PdWorkersMissing" and alert.labels.get("job") == "pd-worker"
        for path, notification in list(receiver.receiver.notifications)
        for alert in notification.alerts
    )


def test_webhook_receiver_refuses_a_wrong_token_and_a_bad_payload(tmp_path):
    port = free_port()
    receiver = ReceiverThread(port)
    try:
        def post(body: bytes, token: str) -> int:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/hk-desk", data=body, headers={"Authorization": f"Bearer {token}"})
            try:
                return urllib.request.urlopen(request, timeout=5).status
            except urllib.error.HTTPError as exc:
                return exc.code

        assert post(b"{}", "wrong") == 401
        assert post(b'{"version": "4"}', TOKEN) == 400
        assert receiver.receiver.notifications == []
    finally:
        receiver.stop()
