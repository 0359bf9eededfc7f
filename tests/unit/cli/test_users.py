"""``fraudrisk users`` and ``fraudrisk db`` in process (CliRunner) on an embedded SQLite home."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.unit.identity.test_sessions import fast_argon2
from typer.testing import CliRunner, Result

from fraudrisk.cli.main import app
from fraudrisk.config import get_settings
from fraudrisk.identity.audit import AuditQuery
from fraudrisk.identity.errors import AuthenticationError
from fraudrisk.identity.roles import Permission, Role, permissions_of
from fraudrisk.identity.service import Identity, identity_for
from fraudrisk.io.database import HEAD, open_database

PASSWORD = "correct horse battery staple"
DOC = Path(__file__).resolve().parents[3] / "docs" / "permissions.md"
CODE = re.compile(r"\b[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}\b")
runner = CliRunner()


def use_home(patch: pytest.MonkeyPatch, home: Path) -> None:
    patch.setenv("FRAUDRISK_HOME", str(home))
    for name in ("FRAUDRISK_DB__URL", "FRAUDRISK_IDENTITY__SECRET_KEY"):
        patch.delenv(name, raising=False)
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A fresh (not yet existing) FRAUDRISK_HOME for the module, Argon2 at its cheapest."""
    root = tmp_path_factory.mktemp("users-cli") / "home"
    with pytest.MonkeyPatch.context() as patch, fast_argon2():
        use_home(patch, root)
        yield root
    get_settings.cache_clear()


def invoke(*args: str, stdin: str | None = None) -> Result:
    return runner.invoke(app, list(args), input=stdin)


def identity() -> Identity:
    settings = get_settings()
    return identity_for(settings, open_database(settings.db_url))


def token_of(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def ana(home: Path) -> Result:
    return invoke(
        "users", "create", "--username", "ana", "--role", "analyst", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip


def test_create_prints_the_enrolment_once(ana: Result, home: Path) -> None:
    assert ana.exit_code == 0, ana.output
    assert "created ana (analyst)" in ana.output
    uris = re.findall(r"otpauth://totp/\S+", ana.output)
    assert len(uris) == 1 and "fraudrisk:ana?secret=" in uris[0]
    codes = CODE.findall(ana.output)
    assert len(set(codes)) == 10
    assert (home / "identity.key").exists()  # the embedded sealing key, made on first use

    listed = invoke("users", "list")
    again = invoke(
        "users", "create", "-u", "ana", "--role", "analyst", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    for later in (listed, again):  # never shown again
        assert "otpauth://" not in later.output and not set(CODE.findall(later.output)) & set(codes)
    assert again.exit_code == 1 and "'ana' exists already" in again.output


def test_list_shows_the_user(ana: Result) -> None:
    result = invoke("users", "list")
    assert result.exit_code == 0, result.output
    row = next(line for line in result.output.splitlines() if " ana " in line)
    for cell in ("analyst", "local", "enrolled", "active"):
        assert cell in row


def test_a_wrong_role_is_a_clear_error(home: Path) -> None:
    result = invoke(
        "users", "create", "-u", "bo", "--role", "boss", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert result.exit_code == 1
    assert "error: unknown role 'boss': one of analyst, senior-analyst, risk-manager" in (
        result.output
    )
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    assert "bo" not in [u.username for u in identity().accounts.list()]
    short = invoke(
        "users", "create", "-u", "bo", "--role", "analyst", "--password-stdin", stdin="short\n"
    )
    assert short.exit_code == 1 and "at least 12 characters" in short.output


def test_token_create_prints_a_token_that_authenticates(ana: Result) -> None:
    token = token_of(invoke("users", "token", "create", "-u", "ana"))
    assert token.startswith("frp_")
    principal = identity().sessions.authenticate(token)
    assert principal.username == "ana" and principal.permissions == permissions_of(Role.ANALYST)

    options = ["--scope", "cases:read", "--ttl", "7", "--name", "nightly-export"]
    scoped = token_of(invoke("users", "token", "create", "-u", "ana", *options))
    assert identity().sessions.authenticate(scoped).permissions == {Permission.CASES_READ}
    entry = identity().audit.read(AuditQuery(action="token.create", limit=1))[0]
    assert entry["actor"].startswith("cli:") and entry["change"]["days"] == 7


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--scope", "users:manage"), "ana (analyst) does not have users:manage"),
        (("--scope", "cases:everything"), "scopes are cases:read"),
        (("--ttl", "365"), "a token lives 1 to 90 days"),
    ],
)
def test_token_create_refuses_a_scope_or_lifetime(
    ana: Result, args: tuple[str, ...], message: str
) -> None:
    result = invoke("users", "token", "create", "-u", "ana", *args)
    assert result.exit_code == 1 and message in result.output
    assert "frp_" not in result.output


def test_disable_makes_the_token_fail_and_enable_does_not_revive_it(home: Path) -> None:
    created = invoke(
        "users", "create", "-u", "cy", "--role", "senior-analyst", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    assert created.exit_code == 0, created.output
    token = token_of(invoke("users", "token", "create", "-u", "cy"))
    identity().sessions.authenticate(token)

    disabled = invoke("users", "disable", "-u", "cy")
    assert disabled.exit_code == 0 and "disabled cy" in disabled.output
    with pytest.raises(AuthenticationError):
        identity().sessions.authenticate(token)
    assert "disabled" in next(
        line for line in invoke("users", "list").output.splitlines() if " cy " in line
    )
    assert invoke("users", "enable", "-u", "cy").exit_code == 0
    with pytest.raises(AuthenticationError):
        identity().sessions.authenticate(token)
    assert invoke("users", "disable", "-u", "nobody").exit_code == 1


def test_role_unlock_and_reset_mfa(home: Path) -> None:
    created = invoke(
        "users", "create", "-u", "dee", "--role", "analyst", "--password-stdin",
        stdin=PASSWORD + "\n",
    )  # fmt: skip
    role = invoke("users", "role", "-u", "dee", "--role", "risk-manager")
    assert role.exit_code == 0 and "dee is now risk-manager" in role.output
    assert identity().accounts.get("dee").role is Role.RISK_MANAGER
    wrong = invoke("users", "role", "-u", "dee", "--role", "boss")
    assert wrong.exit_code == 1 and "unknown role 'boss'" in wrong.output
    assert invoke("users", "unlock", "-u", "dee").exit_code == 0

    reset = invoke("users", "reset-mfa", "-u", "dee")
    assert reset.exit_code == 0, reset.output
    old_uri = re.search(r"otpauth://\S+", created.output)
    new_uri = re.search(r"otpauth://\S+", reset.output)
    assert old_uri and new_uri and old_uri.group() != new_uri.group()
    assert len(set(CODE.findall(reset.output))) == 10
    assert invoke("users", "reset-mfa", "-u", "nobody").exit_code == 1
    actions = [e["action"] for e in identity().audit.read(AuditQuery(object_id="dee"))]
    assert actions == ["user.reset-mfa", "user.unlock", "user.role", "user.create"]


def test_permissions_markdown_equals_the_doc() -> None:
    result = invoke("users", "permissions", "--markdown")
    assert result.exit_code == 0
    assert result.output == DOC.read_text(encoding="utf-8"), (
        "run `fraudrisk users permissions --markdown > docs/permissions.md`"
    )
    shown = invoke("users", "permissions")
    assert shown.exit_code == 0 and "users:manage" in shown.output


def test_db_current_and_upgrade(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    use_home(monkeypatch, tmp_path / "db-home")
    try:
        before = invoke("db", "current")
        assert before.exit_code == 0, before.output
        assert f"at none, code needs {HEAD} (behind: run `fraudrisk db upgrade`)" in before.output
        upgraded = invoke("db", "upgrade")
        assert upgraded.exit_code == 0, upgraded.output
        assert f"schema revision none → {HEAD}" in upgraded.output
        assert "fraudrisk.db" in upgraded.output
        after = invoke("db", "current")
        assert f"at {HEAD}, code needs {HEAD} (up to date)" in after.output
        again = invoke("db", "upgrade")
        assert f"schema revision {HEAD} → {HEAD}" in again.output
    finally:
        get_settings.cache_clear()
