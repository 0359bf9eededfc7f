"""Settings: FRAUDRISK_ variables, nested groups, lazy construction, masked secrets."""

import pytest

from fraudrisk.config import Settings, get_settings


def test_nested_groups_come_from_prefixed_variables(monkeypatch, tmp_path):
    monkeypatch.setenv("FRAUDRISK_HOME", str(tmp_path))
    monkeypatch.setenv("FRAUDRISK_KAFKA__BOOTSTRAP_SERVERS", "b-1.msk:9094,b-2.msk:9094")
    monkeypatch.setenv("FRAUDRISK_LAKE__URI", "s3://risk-lake/tx")
    monkeypatch.setenv("FRAUDRISK_FEAST__ONLINE_STORE", "redis")
    settings = Settings()
    assert settings.kafka.bootstrap_servers == "b-1.msk:9094,b-2.msk:9094"
    assert settings.lake_uri == "s3://risk-lake/tx"
    assert settings.feast.online_store == "redis"
    assert settings.db_url == f"sqlite:///{tmp_path.resolve()}/fraudrisk.db"


def test_defaults_live_under_home(monkeypatch, tmp_path):
    monkeypatch.setenv("FRAUDRISK_HOME", str(tmp_path))
    settings = Settings()
    assert settings.lake_uri == str(tmp_path / "lake")
    assert settings.mlflow_tracking_uri.endswith("mlflow.db")


def test_invalid_values_are_rejected_with_the_field_name(monkeypatch):
    monkeypatch.setenv("FRAUDRISK_FEAST__ONLINE_STORE", "memcached")
    with pytest.raises(ValueError, match="online_store"):
        Settings()


def test_masked_view_hides_secrets_and_url_passwords(monkeypatch):
    monkeypatch.setenv("FRAUDRISK_DB__URL", "postgresql://risk:s3cr3t-pw@rds.internal:5432/fraud")
    monkeypatch.setenv("FRAUDRISK_KAFKA__SASL_PASSWORD", "kafka-pw")
    monkeypatch.setenv("FRAUDRISK_LAKE__S3_SECRET_ACCESS_KEY", "aws-secret")
    text = repr(Settings().masked())
    for secret in ("s3cr3t-pw", "kafka-pw", "aws-secret"):
        assert secret not in text
    assert "postgresql://risk:********@rds.internal:5432/fraud" in text


def test_get_settings_is_cached():
    get_settings.cache_clear()
    assert get_settings() is get_settings()
    get_settings.cache_clear()
