"""deploy/docker-compose.yml stays consistent with Settings, the Prometheus config and Grafana provisioning."""

from __future__ import annotations

import re

import pytest
import yaml

from pipeline.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
DEFAULTED = re.compile(r"\$\{(\w+):-([^}]*)\}")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def _pipeline_services(compose: dict) -> dict[str, dict]:
    services = compose["services"].items()
    return {name: s for name, s in services if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"}


def test_pipeline_env_vars_are_settings_fields(compose):
    fields = {name.upper() for name in Settings.model_fields}
    services = _pipeline_services(compose)
    assert services, "no service builds deploy/Dockerfile"
    for name, service in services.items():
        env = service["environment"]
        assert set(env) <= fields, f"{name}: unknown settings {sorted(set(env) - fields)}"
        assert {"KAFKA_BOOTSTRAP_SERVERS", "CLICKHOUSE_URL"} <= set(env)
        assert env["METRICS_HOST"] == "0.0.0.0", "Prometheus scrapes the worker from another container"


def test_workers_do_not_outnumber_partitions(compose):
    worker = compose["services"]["worker"]
    replicas = int(DEFAULTED.fullmatch(str(worker["deploy"]["replicas"])).group(2))
    partitions = int(DEFAULTED.fullmatch(worker["environment"]["TOPIC_PARTITIONS"]).group(2))
    assert 1 < replicas <= partitions


def test_prometheus_scrapes_the_worker_service_on_its_metrics_port(compose):
    worker_env = compose["services"]["worker"]["environment"]
    volumes = compose["services"]["prometheus"]["volumes"]
    mounts = {m.split(":")[1]: m.split(":")[0] for m in volumes if m.startswith("./")}
    config = yaml.safe_load((DEPLOY / mounts["/etc/prometheus/prometheus.yml"]).read_text())
    (sd,) = config["scrape_configs"][0]["dns_sd_configs"]
    assert sd["names"] == ["worker"] and str(sd["port"]) == worker_env["METRICS_PORT"]


def test_bind_mounts_exist(compose):
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name}: {source} is missing"


def test_grafana_has_every_variable_its_datasources_read(compose):
    provisioning = (DEPLOY / "grafana" / "provisioning" / "datasources" / "clickhouse.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)\}", provisioning))
    assert used and used <= set(compose["services"]["grafana"]["environment"])
