"""``fraudrisk dashboard`` and the pinned front-end assets."""

from __future__ import annotations

import json
from importlib import resources

from typer.testing import CliRunner

from fraudrisk.cli.main import app
from fraudrisk.dashboard import assets
from fraudrisk.io.network import is_loopback


def test_serve_has_examples_and_names_its_settings() -> None:
    shown = CliRunner().invoke(app, ["dashboard", "serve", "--help"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0
    assert "fraudrisk dashboard serve --insecure-http" in shown.output
    assert "FRAUDRISK_DASHBOARD__PORT" in shown.output


def test_plain_http_is_refused_off_loopback() -> None:
    refused = CliRunner().invoke(
        app, ["dashboard", "serve", "--host", "0.0.0.0", "--insecure-http"]
    )
    assert refused.exit_code == 2
    assert "loopback" in refused.output
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")


def test_the_lockfile_pins_exactly_the_declared_versions() -> None:
    folder = resources.files("fraudrisk.dashboard") / "npm"
    declared = json.loads((folder / "package.json").read_text())
    locked = json.loads((folder / "package-lock.json").read_text())["packages"]
    wanted = {**declared["dependencies"], **declared["devDependencies"]}
    assert {name: locked[f"node_modules/{name}"]["version"] for name in wanted} == wanted
    for served in assets.VENDORED.values():
        assert served.split("/", 1)[0] in declared["dependencies"]  # never a dev-only file


def test_the_build_is_keyed_by_the_lockfile() -> None:
    first = assets.checksum()
    assert len(first) == 16 and first == assets.checksum()
    assert assets.vendor_dir().parent.name == first
