"""``fraudrisk policy draft | submit | approve | activate | rollback | list | show | diff``.

In process (Typer's CliRunner) on an embedded SQLite home made by the migrations; each person
acts with their own personal API token (``--token-file`` or ``$FRAUDRISK_TOKEN``), resolved
against the identity database as the case API resolves a bearer token. The lint is the real
one: a text with a type error is refused with its ``file:line:col``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.cases.case_doubles import BOOT, PASSWORD, fast_argon2
from tests.unit.policy.desk import LOWER, POLICY
from typer.testing import CliRunner, Result

from fraudrisk.cli.main import app
from fraudrisk.config import get_settings
from fraudrisk.identity.audit import AuditQuery
from fraudrisk.identity.roles import Role
from fraudrisk.identity.service import Identity, identity_for
from fraudrisk.io.database import open_database

runner = CliRunner()
#: A type error on line 5: a number compared with a text.
TYPE_ERROR = POLICY.replace("amount >= 250", 'amount >= "big"')
PEOPLE = {"rita": Role.RISK_MANAGER, "rob": Role.RISK_MANAGER, "ana": Role.ANALYST}


def identity() -> Identity:
    settings = get_settings()
    return identity_for(settings, open_database(settings.db_url))


@pytest.fixture()
def tokens(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Path]]:
    """A fresh home with rita and rob (risk managers) and ana (analyst): their token files."""
    monkeypatch.setenv("FRAUDRISK_HOME", str(tmp_path / "home"))
    for name in ("FRAUDRISK_DB__URL", "FRAUDRISK_IDENTITY__SECRET_KEY", "FRAUDRISK_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    with fast_argon2():
        people = identity()
        files = {}
        for name, role in PEOPLE.items():
            people.accounts.create(BOOT, name, role, PASSWORD, mfa_required=False)
            issued = people.sessions.create_api_token(BOOT, name, "", None, "policy cli")
            files[name] = tmp_path / f"{name}.token"
            files[name].write_text(issued.token + "\n")
        yield files
    get_settings.cache_clear()


def policy(tmp_path: Path, text: str, name: str = "policy.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def run(*args: str | Path, who: Path | None = None) -> Result:
    """``fraudrisk policy ARGS`` as the owner of the token file ``who``."""
    token = ["--token-file", str(who)] if who is not None else []
    return runner.invoke(app, ["policy", *map(str, args), *token], terminal_width=200)


def ok(result: Result) -> Result:
    assert result.exit_code == 0, result.output
    return result


def refused(result: Result, *phrases: str) -> str:
    """The error of a refused command: exit 1, one red ``error:`` line naming ``phrases``."""
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: "), result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr
    return result.stderr


def drafted(tmp_path: Path, tokens: dict[str, Path], text: str = POLICY) -> int:
    """A new draft by rita; its number (printed last)."""
    result = ok(run("draft", policy(tmp_path, text), "-m", "why not", who=tokens["rita"]))
    return int(result.stdout.strip().splitlines()[-1])


def statuses(tokens: dict[str, Path]) -> dict[int, str]:
    listed = json.loads(ok(run("list", "--json", who=tokens["rob"])).stdout)
    return {v["number"]: v["status"] for v in listed}


def test_draft_submit_approve_by_another_activate_and_roll_back(
    tmp_path: Path, tokens: dict[str, Path]
) -> None:
    rita, rob = tokens["rita"], tokens["rob"]
    first = drafted(tmp_path, tokens)
    assert first == 1
    assert "pending" in ok(run("submit", first, who=rita)).stdout
    approved = ok(run("approve", first, "-m", "backtest fine", who=rob)).stdout
    assert "approved by rob" in approved and "policy activate 1" in approved
    assert "is active" in ok(run("activate", first, who=rob)).stdout
    second = drafted(tmp_path, tokens, LOWER)
    ok(run("submit", second, who=rita))
    ok(run("approve", second, who=rob))
    ok(run("activate", second, who=rita))  # the author may activate what another approved
    assert statuses(tokens) == {2: "active", 1: "retired"}

    back = ok(run("rollback", "--to", first, "-m", "v2 reviews too much", who=rob)).stdout
    assert "version 1 is active again (rolled back by rob)" in back
    assert statuses(tokens) == {2: "retired", 1: "active"}
    shown = json.loads(ok(run("show", first, "--json", who=rita)).stdout)
    assert (shown["author"], shown["approver"], shown["activated_by"]) == ("rita", "rob", "rob")
    assert shown["text"] == POLICY and shown["note"] == "v2 reviews too much"

    entries = identity().audit.read(AuditQuery(object_type="policy", limit=50))
    steps = [(e["actor"], e["action"], e["object_id"], e["source"]) for e in reversed(entries)]
    assert steps == [
        ("rita", "policy.draft", "1", "cli"),
        ("rita", "policy.submit", "1", "cli"),
        ("rob", "policy.approve", "1", "cli"),
        ("rob", "policy.activate", "1", "cli"),
        ("rita", "policy.draft", "2", "cli"),
        ("rita", "policy.submit", "2", "cli"),
        ("rob", "policy.approve", "2", "cli"),
        ("rita", "policy.activate", "2", "cli"),
        ("rob", "policy.rollback", "1", "cli"),
    ]


def test_the_author_cannot_approve_their_own_version(
    tmp_path: Path, tokens: dict[str, Path]
) -> None:
    number = drafted(tmp_path, tokens)
    ok(run("submit", number, who=tokens["rita"]))
    refused(
        run("approve", number, who=tokens["rita"]),
        "rita wrote version 1",
        "four eyes",
        "ask another risk manager to approve it",
    )
    refused(run("activate", number, who=tokens["rob"]), "it is pending", "allowed: approve, reject")
    assert statuses(tokens) == {1: "pending"}


def test_the_token_of_the_environment_is_the_person_acting(
    tmp_path: Path, tokens: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """FRAUDRISK_TOKEN holds rita's token: she cannot approve her own, whatever she types."""
    number = drafted(tmp_path, tokens)
    monkeypatch.setenv("FRAUDRISK_TOKEN", tokens["rita"].read_text().strip())
    ok(run("submit", number))
    refused(run("approve", number), "ask another risk manager to approve it")
    monkeypatch.setenv("FRAUDRISK_TOKEN", tokens["rob"].read_text().strip())
    ok(run("approve", number))


def test_an_analyst_may_neither_draft_nor_approve_nor_read(
    tmp_path: Path, tokens: dict[str, Path]
) -> None:
    ana = tokens["ana"]
    refused(run("draft", policy(tmp_path, POLICY), who=ana), "ana (analyst)", "policy:author")
    number = drafted(tmp_path, tokens)
    ok(run("submit", number, who=tokens["rita"]))
    refused(run("approve", number, who=ana), "policy:approve")
    refused(run("reject", number, who=ana), "policy:approve")
    refused(run("list", who=ana), "policy:read")
    refused(run("show", number, who=ana), "policy:read")
    assert statuses(tokens) == {1: "pending"}


def test_a_policy_with_a_type_error_is_refused_with_its_position(
    tmp_path: Path, tokens: dict[str, Path]
) -> None:
    bad = policy(tmp_path, TYPE_ERROR, "bad.yaml")
    error = refused(run("draft", bad, who=tokens["rita"]), "does not lint (1 problem(s))")
    assert f"{bad}:5:33: '>=' compares numbers" in error
    assert statuses(tokens) == {}


def test_a_route_to_a_queue_the_routing_file_lacks_is_refused(
    tmp_path: Path, tokens: dict[str, Path]
) -> None:
    lost = policy(tmp_path, POLICY.replace("queue: high-value", "queue: nowhere"), "lost.yaml")
    error = refused(run("draft", lost, who=tokens["rita"]))
    assert f"{lost}:5:" in error and "unknown queue 'nowhere'" in error


def test_without_a_valid_token_nothing_happens(tmp_path: Path, tokens: dict[str, Path]) -> None:
    file = policy(tmp_path, POLICY)
    refused(run("draft", file), "--token-file PATH", "FRAUDRISK_TOKEN")
    bogus = policy(tmp_path, "frs_not-a-token\n", "bogus.token")
    refused(run("draft", file, who=bogus), "not signed in")
    refused(run("list", who=tmp_path / "missing.token"), "cannot read the token file")
    assert statuses(tokens) == {}


def test_list_show_and_diff(tmp_path: Path, tokens: dict[str, Path]) -> None:
    first = drafted(tmp_path, tokens)
    second = drafted(tmp_path, tokens, LOWER)
    table = ok(run("list", who=tokens["rob"])).stdout
    assert "policy versions" in table and "rita" in table and "draft" in table
    pending = json.loads(ok(run("list", "--status", "draft", "--json", who=tokens["rob"])).stdout)
    assert [v["number"] for v in pending] == [second, first] and "text" not in pending[0]
    refused(run("list", "--status", "live", who=tokens["rob"]), "unknown status 'live'")

    shown = ok(run("show", "--version", second, who=tokens["rob"])).stdout
    assert "policy version 2 (desk)" in shown and "review at risk ≥" in shown and "0.08" in shown
    refused(run("show", 99, who=tokens["rob"]), "no policy version 99")

    diff = ok(run("diff", first, second, who=tokens["rob"])).stdout
    assert diff.startswith("--- v1\n+++ v2\n")
    assert "-thresholds: {review: 0.1, decline: 0.9}" in diff
    assert "+thresholds: {review: 0.08, decline: 0.9}" in diff
    file = policy(tmp_path, LOWER, "lower.yaml")
    assert ok(run("diff", second, file, who=tokens["rob"])).stdout == ""
    assert f"+++ {file}" in ok(run("diff", first, file, who=tokens["rob"])).stdout


def test_show_still_shows_a_file_without_a_token(tmp_path: Path, tokens: dict[str, Path]) -> None:
    file = policy(tmp_path, POLICY)
    assert "policy 'desk'" in ok(run("show", file)).stdout
    summary = json.loads(ok(run("show", file, "--json")).stdout)
    assert summary["policy"]["name"] == "desk"


@pytest.mark.parametrize(
    "command", ["draft", "submit", "approve", "reject", "activate", "rollback", "list", "diff"]
)
def test_every_version_command_has_examples(command: str) -> None:
    helped = runner.invoke(app, ["policy", command, "--help"], terminal_width=200)
    assert helped.exit_code == 0, helped.output
    assert "Examples" in helped.stdout and f"fraudrisk policy {command}" in helped.stdout
