"""deploy/docker-compose.yml as an operator would run it (there is no Docker here): valid against the
Compose specification's JSON Schema once interpolated, and every file, port, variable, command
and replica count it names agrees with the code and the other deploy/ files."""

from __future__ import annotations

import importlib.resources
import json
import re
import xml.etree.ElementTree as ET
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

from pipeline.cli import build_parser
from pipeline.connectors import CONNECTORS
from pipeline.settings import PROJECT_ROOT, Settings

DEPLOY = PROJECT_ROOT / "deploy"
COMPOSE_PATH = DEPLOY / "docker-compose.yml"
ENV_EXAMPLE = DEPLOY / "compose.env.example"
COMPOSE_SPEC = importlib.resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
"""The Compose specification's schema as check-jsonschema vendors it (licence and source in its
builtin_schemas/vendor/licenses/LICENSE.compose-spec and README)."""

_VARIABLE = re.compile(r"\$(?:\$|\{(?P<braced>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}."""

    def substitute(match: re.Match) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group("braced") or match.group("bare")
        op, arg = match.group("op"), match.group("arg")
        value = env.get(name)
        if op in (":-", "-"):
            return arg if value is None or (op == ":-" and value == "") else value
        if op in (":?", "?") and (value is None or (op == ":?" and value == "")):
            raise ValueError(f"required variable {name} is not set: {arg}")
        return value or ""

    return _VARIABLE.sub(substitute, value)


def variables(text: str) -> dict[str, str | None]:
    """Every variable the file reads, with its default (None when it has none)."""
    found: dict[str, str | None] = {}
    for match in _VARIABLE.finditer(text):
        name = match.group("braced") or match.group("bare")
        if name:
            found[name] = match.group("arg") if match.group("op") in (":-", "-") else found.get(name)
    return found


def _walk(node, env):
    if isinstance(node, dict):
        return {key: _walk(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [_walk(item, env) for item in node]
    return interpolate(node, env) if isinstance(node, str) else node


def example_env() -> dict[str, str]:
    env = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        line = line.split(" #")[0].strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(COMPOSE_PATH.read_text())


@pytest.fixture(scope="module")
def compose(raw) -> dict:
    """The model compose would run with the example environment."""
    return _walk(raw, example_env())


def pipeline_services(compose: dict) -> dict[str, dict]:
    return {n: s for n, s in compose["services"].items() if s.get("build", {}).get("dockerfile") == "deploy/Dockerfile"}


def test_valid_against_the_compose_specification(compose):
    schema = json.loads(COMPOSE_SPEC.read_text())
    validator = jsonschema.validators.validator_for(schema)(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors)


def test_the_validation_catches_a_broken_file(compose):
    schema = json.loads(COMPOSE_SPEC.read_text())
    broken = {**compose, "services": {**compose["services"], "bridge": {**compose["services"]["bridge"], "restart": 3, "helthcheck": {}}}}
    assert not jsonschema.validators.validator_for(schema)(schema).is_valid(broken)


def test_every_variable_is_documented_and_secrets_are_required(raw):
    text = COMPOSE_PATH.read_text()
    used = variables(text)
    secret_env = {secret["environment"] for secret in raw["secrets"].values()}
    assert set(used) | secret_env == set(example_env()), "deploy/compose.env.example must list exactly the compose variables"
    for name in ("CLICKHOUSE_PASSWORD", "CLICKHOUSE_GRAFANA_PASSWORD", "GRAFANA_ADMIN_PASSWORD", "PUSH_TOKEN"):
        assert f"${{{name}:?" in text and used[name] is None, f"{name} must be required, never defaulted"
    with pytest.raises(ValueError, match="CLICKHOUSE_PASSWORD"):
        _walk(raw, {})


def test_referenced_files_exist(compose):
    for name, service in compose["services"].items():
        if "build" in service:
            context = (DEPLOY / service["build"]["context"]).resolve()
            assert (context / service["build"]["dockerfile"]).is_file() and (context / ".dockerignore").is_file()
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name}: {source} is missing"
            else:
                assert source in compose["volumes"], f"{name}: undeclared volume {source}"
        for dependency in service.get("depends_on", {}):
            assert dependency in compose["services"], f"{name} depends on unknown {dependency}"


def test_pipeline_env_vars_are_settings_that_parse(compose):
    fields = {name.upper() for name in Settings.model_fields}
    read_by_connectors = set(re.findall(r'os\.environ\.get\("([A-Z_]+)"\)', "".join(p.read_text() for p in (PROJECT_ROOT / "pipeline").rglob("*.py"))))
    services = pipeline_services(compose)
    assert {"topics", "migrate", "enrich", "store-detect", "connector", "push", "bridge"} <= set(services)
    for name, service in services.items():
        env = service.get("environment", {})
        assert set(env) <= fields | read_by_connectors, f"{name}: unknown settings {sorted(set(env) - fields - read_by_connectors)}"
        if env:
            settings = Settings(**{k.lower(): v for k, v in env.items() if k in fields})
            assert settings.metrics_host == "0.0.0.0", "Prometheus scrapes every process from another container"


def test_commands_are_cli_commands_and_connectors(compose):
    commands = build_parser()._subparsers._group_actions[0].choices
    for name, service in pipeline_services(compose).items():
        if "entrypoint" in service:
            assert service["entrypoint"] == ["python", "-m", "pipeline.notify.webhook"]
            continue
        command = service["command"]
        assert command[0] in commands, f"{name}: {command[0]} is not a pipeline command"
        if command[0] == "connect":
            assert command[1] in CONNECTORS


def test_processes_split_by_stage_with_healthchecks(compose):
    services = compose["services"]
    assert services["enrich"]["environment"]["WORKER_STAGES"] == "enrich"
    assert services["store-detect"]["environment"]["WORKER_STAGES"] == "store,detect"
    assert services["store-detect"]["deploy"]["replicas"] == 1  # one owner of the alert engine and its dashboard
    assert services["enrich"]["deploy"]["replicas"] <= int(services["enrich"]["environment"]["TOPIC_PARTITIONS"])
    for name, service in pipeline_services(compose).items():
        if name in ("topics", "migrate"):
            assert service["restart"] == "no" and "healthcheck" not in service
            continue
        port = service["environment"]["METRICS_PORT"] if "environment" in service else "8080"
        assert f"http://127.0.0.1:{port}/healthz" in " ".join(service["healthcheck"]["test"]), name
        if name not in ("desk-webhook",):
            assert service["depends_on"]["topics"] == {"condition": "service_completed_successfully"}
    for name in ("enrich", "store-detect"):
        assert services[name]["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}


def test_published_ports_are_loopback_and_match_what_listens(compose):
    services = compose["services"]
    published = [(name, port) for name, s in services.items() for port in s.get("ports", [])]
    assert all(port.startswith("127.0.0.1:") for _, port in published), published
    assert len({port.split(":")[1] for _, port in published}) == len(published), "a host port is published twice"
    container_port = {name: port.rsplit(":", 1)[1] for name, port in published}
    assert container_port["store-detect"] == services["store-detect"]["environment"]["WEB_PORT"]
    assert f"port={container_port['push']}" in services["push"]["command"]
    kafka = services["kafka"]["environment"]
    external = dict(item.split("://") for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))["EXTERNAL"]
    assert f"EXTERNAL://:{container_port['kafka']}" in kafka["KAFKA_LISTENERS"]
    assert external.rsplit(":", 1)[1] == services["kafka"]["ports"][0].split(":")[1]


def test_prometheus_scrapes_every_process_and_expects_its_replicas(compose):
    services = compose["services"]
    volumes = services["prometheus"]["volumes"]
    mounts = {m.split(":")[1]: DEPLOY / m.split(":")[0] for m in volumes if m.startswith("./")}
    config = yaml.safe_load(mounts["/etc/prometheus/prometheus.yml"].read_text())
    targets = yaml.safe_load(mounts["/etc/prometheus/targets.yml"].read_text())
    expected = {rule["labels"]["job"]: int(rule["expr"].strip("vector()")) for rule in targets["groups"][0]["rules"]}
    scraped = set()
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            (service,) = sd["names"]
            scraped.add(service)
            assert str(sd["port"]) == services[service]["environment"]["METRICS_PORT"]
            assert expected[job["job_name"]] == services[service].get("deploy", {}).get("replicas", 1), job["job_name"]
    long_running = {name for name, s in pipeline_services(compose).items() if s.get("restart") != "no" and name != "desk-webhook"}
    assert scraped == long_running
    (alertmanager,) = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert services["bridge"]["environment"]["ALERTMANAGER_URL"] == f"http://{alertmanager}"
    assert alertmanager.endswith(":" + services["alertmanager"]["ports"][0].rsplit(":", 1)[1])


def test_alertmanager_reaches_the_desk_webhook_with_the_mounted_secrets(compose):
    services = compose["services"]
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    mounted = {f"/run/secrets/{name}" for name in services["alertmanager"]["secrets"]}
    assert config["global"]["smtp_auth_password_file"] in mounted
    webhook = services["desk-webhook"]
    assert f"/run/secrets/{webhook['secrets'][0]}" == webhook["command"][webhook["command"].index("--token-file") + 1]
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            url = urlparse(hook["url"])
            assert url.hostname == "desk-webhook" and str(url.port) == webhook["expose"][0]
            assert hook["http_config"]["authorization"]["credentials_file"] in mounted


def test_grafana_reads_clickhouse_as_a_read_only_user_with_a_pinned_plugin(compose):
    grafana = compose["services"]["grafana"]["environment"]
    provisioning = (DEPLOY / "grafana" / "provisioning" / "datasources" / "clickhouse.yaml").read_text()
    used = set(re.findall(r"\$\{(\w+)\}", provisioning))
    assert used and used <= set(grafana)
    plugin, version = grafana["GF_INSTALL_PLUGINS"].split(" ")
    assert plugin == "grafana-clickhouse-datasource" and re.fullmatch(r"\d+\.\d+\.\d+", version)
    users = ET.parse(DEPLOY / "clickhouse-server" / "users.d" / "grafana.xml").getroot()
    user = users.find(f"users/{grafana['CLICKHOUSE_USER']}")
    profile = users.find(f"profiles/{user.findtext('profile')}")
    assert profile.findtext("readonly") == "1" and user.findtext("access_management") == "0"
    assert user.find("password").get("from_env") in compose["services"]["clickhouse"]["environment"]
    assert grafana["CLICKHOUSE_USER"] != compose["services"]["clickhouse"]["environment"]["CLICKHOUSE_USER"]
