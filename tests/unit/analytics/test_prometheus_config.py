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
    assert "SUCCESS: 5 rules found" in _promtool("check", "rules", "rules.yml")


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
