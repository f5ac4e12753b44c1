"""promtool validates the Prometheus configs and proves every alert rule fires and stays quiet."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from pipeline.settings import PROJECT_ROOT

PROMETHEUS_DIR = PROJECT_ROOT / "deploy" / "prometheus"
PROMTOOL = shutil.which("promtool")


def _promtool(*args: str) -> str:
    result = subprocess.run([PROMTOOL, *args], cwd=PROMETHEUS_DIR, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_config_is_valid(config):
    assert "SUCCESS" in _promtool("check", "config", config)


def test_rules_are_valid():
    assert "SUCCESS: 7 rules found" in _promtool("check", "rules", "rules.yml")


@pytest.mark.parametrize("targets", ["targets.yml", "targets.compose.yml"])
def test_expected_targets_cover_every_scrape_job(targets):
    """PdWorkersMissing needs an expected count for each pipeline job the deployment scrapes."""
    import yaml

    config = "prometheus.yml" if targets == "targets.yml" else "prometheus.compose.yml"
    assert "SUCCESS" in _promtool("check", "rules", targets)
    jobs = {job["job_name"] for job in yaml.safe_load((PROMETHEUS_DIR / config).read_text())["scrape_configs"]}
    rules = yaml.safe_load((PROMETHEUS_DIR / targets).read_text())["groups"][0]["rules"]
    expected = {rule["labels"]["job"] for rule in rules if rule["record"] == "pd:expected_targets"}
    assert expected == {job for job in jobs if job.startswith("pd-")}


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus.compose.yml"])
def test_prometheus_sends_its_alerts_to_alertmanager(config):
    import yaml

    alerting = yaml.safe_load((PROMETHEUS_DIR / config).read_text())["alerting"]
    (targets,) = [c["targets"] for manager in alerting["alertmanagers"] for c in manager["static_configs"]]
    assert targets == (["127.0.0.1:9093"] if config == "prometheus.yml" else ["alertmanager:9093"])


def test_rule_unit_tests_pass():
    _promtool("test", "rules", "rules_test.yml")


def test_every_alert_has_a_rule_test():
    import yaml

    rules = yaml.safe_load((PROMETHEUS_DIR / "rules.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((PROMETHEUS_DIR / "rules_test.yml").read_text())["tests"]
    firing = {case["alertname"] for test in tests for case in test["alert_rule_test"] if case["exp_alerts"]}
    quiet = {case["alertname"] for test in tests for case in test["alert_rule_test"] if not case["exp_alerts"]}
    assert alerts == firing == quiet
