"""Settings come from the environment; the README documents every one of them."""

from __future__ import annotations

import re

import pytest

from pipeline.settings import PROJECT_ROOT, Settings, Topics


def test_every_setting_is_an_env_var_documented_in_the_readme():
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([A-Z0-9_]+)` \| [^|]* \| (.*) \|$", readme, flags=re.MULTILINE)
    assert dict(rows) == {name.upper(): field.description for name, field in Settings.model_fields.items()}


def test_production_is_configuration_only(monkeypatch):
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka-1:9093,kafka-2:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "pd")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", "secret")
    monkeypatch.setenv("CLICKHOUSE_URL", "https://pd:pw@ch.internal:8443")
    monkeypatch.setenv("TOPIC_PREFIX", "bt1.")
    settings = Settings()
    assert settings.resolved_clickhouse_url == "https://pd:pw@ch.internal:8443"
    assert settings.topic(Topics.RAW) == "bt1.posts.raw"
    kwargs = settings.kafka_client_kwargs()
    assert kwargs["bootstrap_servers"] == "kafka-1:9093,kafka-2:9093"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-512"
    assert kwargs["sasl_plain_password"] == "secret"
    assert "secret" not in repr(settings)


def test_embedded_default_is_chdb_under_the_data_dir(tmp_path):
    settings = Settings(data_dir=tmp_path)
    assert settings.resolved_clickhouse_url == f"chdb://{tmp_path.resolve() / 'chdb'}"


def test_bad_values_are_rejected(monkeypatch):
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ValueError):
        Settings()


def test_worker_stages_are_a_comma_separated_env_var(monkeypatch):
    assert Settings().worker_stages == ("enrich", "store", "detect")
    monkeypatch.setenv("WORKER_STAGES", "enrich, detect")
    assert Settings().worker_stages == ("enrich", "detect")
    monkeypatch.setenv("WORKER_STAGES", "enrich,score")
    with pytest.raises(ValueError, match="score"):
        Settings()
    monkeypatch.setenv("WORKER_STAGES", "")
    with pytest.raises(ValueError):
        Settings()
