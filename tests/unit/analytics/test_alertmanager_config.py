"""deploy/alertmanager: amtool accepts the config, routes by kind, severity and watch, and the
e-mail template names the alert and links to the dashboard."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pipeline.notify.alertmanager import alert_labels
from pipeline.settings import PROJECT_ROOT
from tests.alert_samples import alert

ALERTMANAGER_DIR = PROJECT_ROOT / "deploy" / "alertmanager"
AMTOOL = shutil.which("amtool")


def _amtool(*args: str) -> str:
    result = subprocess.run([AMTOOL, *args], cwd=ALERTMANAGER_DIR, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_config_and_its_templates_are_valid(tmp_path):
    """amtool parses the templates its `templates:` glob finds: point it at the repository's."""
    import yaml

    config = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())
    assert config["templates"] == ["/etc/alertmanager/templates/*.tmpl"]  # where compose mounts them
    config["templates"] = [str(ALERTMANAGER_DIR / "templates" / "*.tmpl")]
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    out = _amtool("check-config", str(tmp_path / "alertmanager.yml"))
    assert "SUCCESS" in out and "4 receivers" in out and "1 templates" in out
    (tmp_path / "broken.tmpl").write_text('{{ define "pd.email.subject" }}{{ .Status ')
    config["templates"].append(str(tmp_path / "broken.tmpl"))
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(config))
    broken = subprocess.run([AMTOOL, "check-config", str(tmp_path / "alertmanager.yml")], capture_output=True, text=True)
    assert broken.returncode != 0  # so the check above did parse the templates


def receivers(labels: dict[str, str]) -> list[str]:
    out = _amtool("config", "routes", "test", "--config.file=alertmanager.yml", *(f"{k}={v}" for k, v in labels.items()))
    return out.strip().split(",")


@pytest.mark.parametrize(
    ("severity", "watch", "expected"),
    [
        ("critical", "hk_mainland_tourists", ["duty-analyst", "hk-desk"]),  # pages, and reaches the watch's desk
        ("warning", "hk_mainland_tourists", ["hk-desk"]),
        ("warning", "topic_other", ["analysts"]),
        ("critical", "topic_other", ["duty-analyst"]),
    ],
)
def test_bridge_alerts_are_routed_by_severity_and_watch(severity, watch, expected):
    labels = alert_labels(alert(severity=severity))
    assert receivers({**labels, "watch": watch}) == expected


def test_prometheus_alerts_go_to_the_operators():
    assert receivers({"alertname": "PdWorkersMissing", "severity": "critical", "job": "pd-enrich"}) == ["operators"]


def test_every_receiver_has_a_webhook_and_the_email_template():
    import yaml

    config = yaml.safe_load((ALERTMANAGER_DIR / "alertmanager.yml").read_text())
    templates = (ALERTMANAGER_DIR / "templates" / "pd-email.tmpl").read_text()
    for name in ("pd.email.subject", "pd.email.html"):
        assert f'define "{name}"' in templates
    for receiver in config["receivers"]:
        (webhook,) = receiver["webhook_configs"]
        assert webhook["url"] == f"http://desk-webhook:8080/{receiver['name']}" and webhook["send_resolved"]
        (email,) = receiver["email_configs"]
        assert "pd.email.html" in email["html"] and "pd.email.subject" in email["headers"]["Subject"]
