"""``fraudrisk policy draft | submit | approve | reject | activate | rollback | list | diff``.

The stored versions of the decision policy and their four-eyes steps
(:mod:`fraudrisk.policy.versions`), in the application database (``FRAUDRISK_DB__URL``). The
person acting is the owner of the personal API token given with ``--token-file PATH`` or in
``$FRAUDRISK_TOKEN`` (``fraudrisk users token create``), resolved as the case API resolves a
bearer token: the step is theirs, checked against their role and audited under their name, so
nobody approves as someone else. The ``policy`` group (:mod:`fraudrisk.cli.policy`) calls
:func:`register`; its ``show N`` shows a stored version through :func:`stored_version`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from fraudrisk.config import get_settings
from fraudrisk.console import console, err_console, examples

if TYPE_CHECKING:
    from fraudrisk.identity.principal import Principal
    from fraudrisk.policy.types import Environment
    from fraudrisk.policy.versions import PolicyVersion, PolicyVersions

#: The environment variable holding the acting person's token (when no --token-file).
TOKEN_ENV = "FRAUDRISK_TOKEN"
TokenFile = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        dir_okay=False,
        help=f"A file holding your personal API token (default: ${TOKEN_ENV}).",
    ),
]
Note = Annotated[str, typer.Option("--note", "-m", help="Why (kept with the version, audited).")]
Number = Annotated[int, typer.Argument(min=1, help="The version's number (policy list).")]
AsJson = Annotated[bool, typer.Option("--json", help="JSON on stdout.")]
_STATUS_STYLE = {
    "draft": "dim",
    "pending": "yellow",
    "approved": "cyan",
    "active": "bold green",
    "retired": "",
    "rejected": "red",
}


def routed_environment() -> Environment:
    """Every transaction field and feature; the queues of the routing file when it loads."""
    from fraudrisk.cases.routing import RoutingError, load_rules  # deferred: pydantic models
    from fraudrisk.policy.linting import policy_environment

    try:
        routing = load_rules(get_settings().cases.routing_file or None)
    except (RoutingError, OSError) as error:
        err_console.print(f"[yellow]warning:[/] queue names not checked: {escape(str(error))}")
        return policy_environment()
    return policy_environment(queue.name for queue in routing.queues)


def fail(error: Exception | str) -> typer.Exit:
    """Print one red error line on stderr; the exit (status 1) to raise."""
    err_console.print(f"[red]error:[/red] {escape(str(error))}", soft_wrap=True, highlight=False)
    return typer.Exit(1)


def _token(token_file: Path | None) -> str:
    """The acting person's token: the file's content, else ``$FRAUDRISK_TOKEN``."""
    if token_file is not None:
        try:
            token = token_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            raise fail(f"cannot read the token file: {error}") from None
    else:
        token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        raise fail(
            f"who is acting? pass --token-file PATH or set {TOKEN_ENV} to your personal API "
            "token (fraudrisk users token create -u NAME)"
        )
    return token


def _desk(token_file: Path | None) -> tuple[PolicyVersions, Principal]:
    """The stored versions, and the person the token belongs to (exit 1 when none is valid)."""
    from fraudrisk.identity.errors import AuthenticationError  # deferred: sqlalchemy, argon2
    from fraudrisk.identity.service import identity_for
    from fraudrisk.io.database import open_database
    from fraudrisk.policy.linting import policy_versions

    token = _token(token_file)
    settings = get_settings()
    engine = open_database(settings.db_url)
    try:
        principal = identity_for(settings, engine).sessions.authenticate(token, source="cli")
    except AuthenticationError as error:
        raise fail(f"{error} (the token of --token-file or {TOKEN_ENV})") from None
    return policy_versions(engine, routed_environment()), principal


def _refused(error: Exception) -> typer.Exit:
    """The exit of a refused step (a policy text's errors listed one a line, with positions)."""
    from fraudrisk.policy.versions import InvalidPolicyError  # deferred: with the versions

    if isinstance(error, InvalidPolicyError):
        count = len(error.errors)
        exit_ = fail(f"the policy does not lint ({count} problem(s)): fix it and draft again")
        for line in error.errors:
            typer.echo(line, err=True)
        return exit_
    return fail(error)


def _errors() -> tuple[type[Exception], ...]:
    """What a step may refuse with: a policy step, or who is asking."""
    from fraudrisk.identity.errors import IdentityError  # deferred: with the versions
    from fraudrisk.policy.versions import PolicyError

    return PolicyError, IdentityError


def version_dict(version: PolicyVersion, text: bool = True) -> dict[str, Any]:
    """A version as JSON-ready data (its text too, unless ``text`` is False)."""
    data = dataclasses.asdict(version)
    if not text:
        del data["text"]
    return {
        key: value.isoformat() if isinstance(value, dt.datetime) else value
        for key, value in data.items()
    }


def _reader(token_file: Path | None) -> PolicyVersions:
    """The stored versions, for a person who may read them (``policy:read``; else exit 1)."""
    from fraudrisk.identity.roles import Permission  # deferred: with the versions

    versions, principal = _desk(token_file)
    try:
        principal.require(Permission.POLICY_READ)
    except _errors() as error:
        raise _refused(error) from None
    return versions


def stored_version(number: int, token_file: Path | None) -> PolicyVersion:
    """A stored version, read as the token's person (exit 1 when refused or unknown)."""
    versions = _reader(token_file)
    try:
        return versions.get(number)
    except _errors() as error:
        raise _refused(error) from None


def _when(at: dt.datetime | None) -> str:
    return f"{at:%Y-%m-%d %H:%M}" if at else "—"


def _status(status: str) -> str:
    style = _STATUS_STYLE.get(status, "")
    return f"[{style}]{status}[/]" if style else status


def version_table(version: PolicyVersion) -> Table:
    """Who wrote, approved and activated a version, and when."""
    table = Table(title=f"policy version {version.number} ({version.name})", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    approver = f"{version.approver}, {_when(version.approved_at)}" if version.approver else "—"
    activated = version.activated_by and f"{version.activated_by}, {_when(version.activated_at)}"
    rows = [
        ("status", _status(version.status.value)),
        ("author", f"{version.author}, {_when(version.created_at)}"),
        ("submitted", _when(version.submitted_at)),
        ("approver", approver),
        ("activated by", activated or "—"),
        ("retired", _when(version.retired_at)),
        ("based on", f"v{version.based_on}" if version.based_on else "—"),
        ("note", escape(version.note) or "—"),
        ("digest", version.digest),
    ]
    for label, value in rows:
        table.add_row(label, value)
    return table


def _list_table(versions: list[PolicyVersion]) -> Table:
    table = Table(title="policy versions (newest first)")
    for column in ("#", "name", "status", "author", "created", "approver", "activated", "note"):
        table.add_column(column, justify="right" if column == "#" else "left")
    for v in versions:
        table.add_row(
            str(v.number),
            v.name,
            _status(v.status.value),
            v.author,
            _when(v.created_at),
            v.approver or "—",
            _when(v.activated_at),
            escape(v.note),
        )
    return table


def _act(step: str, number: int, note: str, token_file: Path | None) -> None:
    """Do a four-eyes step as the token's person and say what comes next (exit 1 if refused)."""
    versions, principal = _desk(token_file)
    try:
        if step == "activate":
            version = versions.activate(principal, number)
        else:
            version = getattr(versions, step)(principal, number, note)
    except _errors() as error:
        raise _refused(error) from None
    said = _NEXT[step].format(n=version.number, who=principal.username)
    console.print(said, highlight=False, soft_wrap=True)


#: What a step's success says next.
_NEXT = {
    "submit": "version {n} is pending: another risk manager approves it with "
    "fraudrisk policy approve {n}",
    "approve": "version {n} approved by {who}: activate it with fraudrisk policy activate {n}",
    "reject": "version {n} rejected by {who}",
    "activate": "version {n} is active (activated by {who})",
    "rollback": "version {n} is active again (rolled back by {who})",
}
TOKEN_EXAMPLE = "--token-file ~/.fraudrisk/token"


def draft(
    file: Annotated[Path, typer.Argument(help="The policy YAML.", dir_okay=False, exists=True)],
    note: Note = "",
    name: Annotated[
        str | None, typer.Option(help="Its name (default: the file's name: field).")
    ] = None,
    based_on: Annotated[int | None, typer.Option(min=1, help="The version it changes.")] = None,
    token_file: TokenFile = None,
) -> None:
    """Store a policy file as a new draft version (it must lint); prints its number last."""
    from fraudrisk.policy.linting import name_of  # deferred: yaml, with the versions

    text = file.read_text(encoding="utf-8")
    versions, principal = _desk(token_file)
    try:
        named = name or name_of(text, file.stem)
        version = versions.draft(principal, named, text, note, based_on, source=str(file))
    except _errors() as error:
        raise _refused(error) from None
    console.print(
        f"drafted version {version.number} ({version.name}) by {version.author}: ask for "
        f"approval with fraudrisk policy submit {version.number}",
        highlight=False,
        soft_wrap=True,
    )
    typer.echo(str(version.number))


def submit(number: Number, note: Note = "", token_file: TokenFile = None) -> None:
    """Ask for approval of your draft: it becomes pending."""
    _act("submit", number, note, token_file)


def approve(number: Number, note: Note = "", token_file: TokenFile = None) -> None:
    """Approve a pending version: the second pair of eyes (never the author's own)."""
    _act("approve", number, note, token_file)


def reject(number: Number, note: Note = "", token_file: TokenFile = None) -> None:
    """Send a pending version back (an author may withdraw their own)."""
    _act("reject", number, note, token_file)


def activate(number: Number, token_file: TokenFile = None) -> None:
    """Make an approved version the active one; the active one retires."""
    _act("activate", number, "", token_file)


def rollback(
    to: Annotated[int, typer.Option("--to", min=1, help="The retired version to bring back.")],
    note: Note = "",
    token_file: TokenFile = None,
) -> None:
    """Make an earlier, retired version active again (the active one retires; audited)."""
    _act("rollback", to, note, token_file)


def list_versions(
    status: Annotated[
        str | None,
        typer.Option(help="Only these: draft, pending, approved, active, retired, rejected."),
    ] = None,
    as_json: AsJson = False,
    token_file: TokenFile = None,
) -> None:
    """List the stored versions, newest first: status, author, approver, activation."""
    from fraudrisk.policy.versions import VersionStatus  # deferred: sqlalchemy

    try:
        wanted = VersionStatus(status) if status else None
    except ValueError:
        raise fail(f"unknown status {status!r}: one of {', '.join(VersionStatus)}") from None
    found = _reader(token_file).list(wanted)
    if as_json:
        typer.echo(json.dumps([version_dict(v, text=False) for v in found], indent=2))
        return
    console.print(_list_table(found))


def diff(
    old: Annotated[str, typer.Argument(help="A version's number, or a policy file.")],
    new: Annotated[str, typer.Argument(help="A version's number, or a policy file.")],
    token_file: TokenFile = None,
) -> None:
    """Show the unified diff of two versions (or of a version and a file) to apply OLD → NEW."""
    from fraudrisk.policy.versions import text_diff  # deferred: sqlalchemy

    versions = _reader(token_file) if is_number(old) or is_number(new) else None
    try:
        (old_label, old_text), (new_label, new_text) = (_read(s, versions) for s in (old, new))
    except _errors() as error:
        raise _refused(error) from None
    typer.echo(text_diff(old_text, new_text, old_label, new_label), nl=False)


def is_number(source: str) -> bool:
    """Whether a command-line argument names a stored version (digits, and no such file)."""
    return source.isdigit() and not Path(source).exists()


def _read(source: str, versions: PolicyVersions | None) -> tuple[str, str]:
    """The label and text of a stored version (a number) or of a file."""
    if versions is not None and is_number(source):
        return f"v{int(source)}", versions.get(int(source)).text
    try:
        return source, Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise fail(f"cannot read {source}: {error}") from None


def register(app: typer.Typer) -> None:
    """Add the version commands to the ``policy`` group."""
    token = TOKEN_EXAMPLE
    commands: list[tuple[str, Callable[..., None], tuple[str, ...]]] = [
        ("draft", draft, (f"fraudrisk policy draft my-policy.yaml {token} -m 'review at 0.04'",
                          "FRAUDRISK_TOKEN=$(cat token) fraudrisk policy draft my-policy.yaml")),
        ("submit", submit, (f"fraudrisk policy submit 4 {token} -m 'backtest attached'",)),
        ("approve", approve, (f"fraudrisk policy approve 4 {token}  # not the author",)),
        ("reject", reject, (f"fraudrisk policy reject 4 {token} -m 'too many reviews'",)),
        ("activate", activate, (f"fraudrisk policy activate 4 {token}",)),
        ("rollback", rollback, (f"fraudrisk policy rollback --to 3 {token} -m 'v4 declines'",)),
        ("list", list_versions, ("fraudrisk policy list",
                                 "fraudrisk policy list --status pending --json")),
        ("diff", diff, ("fraudrisk policy diff 3 4", "fraudrisk policy diff 4 my-policy.yaml")),
    ]  # fmt: skip
    for name, function, lines in commands:
        app.command(name, epilog=examples(*lines))(function)
