"""``fraudrisk api keys create`` and ``fraudrisk api serve`` (a real server on loopback)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from tests.unit.api.helpers import rules_only, settings_with, transaction
from typer.testing import CliRunner

from fraudrisk.api.app import create_app
from fraudrisk.api.auth import hash_api_key
from fraudrisk.cli.main import app as root
from fraudrisk.config import ApiKeySettings, ApiSettings


def test_keys_create_prints_the_key_once_and_its_hash() -> None:
    result = CliRunner().invoke(root, ["api", "keys", "create", "--client", "acme"])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    key = lines[1].strip()
    entry = ApiKeySettings(**json.loads(lines[-1]))
    assert key.startswith("frk_") and entry.key_hash == hash_api_key(key)
    assert entry.client == "acme" and key not in lines[-1]
    settings = settings_with(ApiSettings(kafka_enabled=False, keys=[entry]))
    with TestClient(create_app(settings, scorer=rules_only(settings))) as client:
        good = client.post("/v1/transactions", json=transaction(), headers={"X-API-Key": key})
        bad = client.post("/v1/transactions", json=transaction(), headers={"X-API-Key": "frk_x"})
    assert good.status_code == 200 and bad.status_code == 401
