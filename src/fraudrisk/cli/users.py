"""``fraudrisk users``: people's accounts, their MFA and personal API tokens (admin CLI).

Run by an operator with access to the database; each change is in the audit log under
``cli:<operating-system user>``.
"""

from __future__ import annotations

import getpass
import sys
from typing import TYPE_CHECKING, Annotated

import typer

from fraudrisk.config import get_settings
from fraudrisk.console import console, examples

if TYPE_CHECKING:
    from fraudrisk.identity.accounts import Enrolment
    from fraudrisk.identity.audit import Actor
    from fraudrisk.identity.service import Identity

app = typer.Typer(
    name="users",
    help="People: create users, disable them, reset MFA, issue API tokens.",
    no_args_is_help=True,
)
token_app = typer.Typer(name="token", help="Personal API tokens for scripts.", no_args_is_help=True)
app.add_typer(token_app)

Username = Annotated[str, typer.Option("--username", "-u", help="The user's login name.")]


def _identity() -> Identity:
    from fraudrisk.identity.service import identity_for  # deferred: argon2, sqlalchemy
    from fraudrisk.io.database import open_database

    settings = get_settings()
    return identity_for(settings, open_database(settings.db_url))


def _actor() -> Actor:
    from fraudrisk.identity.audit import Actor  # deferred: sqlalchemy

    return Actor(f"cli:{getpass.getuser()}", "cli")


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/] {error}")
    return typer.Exit(1)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


def _show_enrolment(enrolment: Enrolment) -> None:
    console.print("Add this to an authenticator app (shown once):")
    console.print(enrolment.provisioning_uri, soft_wrap=True, highlight=False)
    console.print("Recovery codes, each usable once (shown once):")
    console.print("  " + "  ".join(enrolment.recovery_codes), highlight=False)


@app.command(
    "create",
    epilog=examples(
        "printf '%s\\n' \"$PASSWORD\" | fraudrisk users create -u ana --role analyst "
        "--password-stdin",
        "fraudrisk users create -u rita --role risk-manager --display-name 'Rita Risk'",
    ),
)
def create(
    username: Username,
    role: Annotated[
        str, typer.Option(help="analyst | senior-analyst | risk-manager | mlops-engineer | admin")
    ],
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
    display_name: Annotated[str, typer.Option(help="Name shown in the dashboard.")] = "",
) -> None:
    """Create a user and print their TOTP provisioning URI and recovery codes, once."""
    from fraudrisk.identity.errors import IdentityError  # deferred: with the service

    password = _read_password(password_stdin)
    try:
        enrolment = _identity().accounts.create(
            _actor(),
            username,
            role,
            password,
            display_name=display_name,
        )
    except (IdentityError, ValueError) as error:
        raise _fail(error) from None
    console.print(f"created [bold]{username}[/] ({role})")
    _show_enrolment(enrolment)


@app.command("list", epilog=examples("fraudrisk users list"))
def list_users() -> None:
    """List the users: role, MFA, disabled, locked."""
    from rich.table import Table  # deferred: rich tables only here

    table = Table("username", "name", "role", "source", "MFA", "state", "created")
    for user in _identity().accounts.list():
        state = "disabled" if user.disabled else "locked" if user.locked_until else "active"
        mfa = "enrolled" if user.mfa_enrolled else "—"
        table.add_row(
            user.username,
            user.display_name,
            user.role.value,
            user.source,
            mfa,
            state,
            f"{user.created_at:%Y-%m-%d}",
        )
    console.print(table)


def _change(action: str, username: str, *args: str) -> None:
    from fraudrisk.identity.errors import IdentityError  # deferred: with the service

    try:
        getattr(_identity().accounts, action)(_actor(), username, *args)
    except (IdentityError, ValueError) as error:
        raise _fail(error) from None


@app.command("disable", epilog=examples("fraudrisk users disable -u ana"))
def disable(username: Username) -> None:
    """Disable a user: their sessions and API tokens stop working at once."""
    _change("disable", username)
    console.print(f"disabled {username}")


@app.command("enable", epilog=examples("fraudrisk users enable -u ana"))
def enable(username: Username) -> None:
    """Enable a disabled user (they log in again; old sessions stay revoked)."""
    _change("enable", username)
    console.print(f"enabled {username}")


@app.command("unlock", epilog=examples("fraudrisk users unlock -u ana"))
def unlock(username: Username) -> None:
    """Lift a lockout after too many failed logins."""
    _change("unlock", username)
    console.print(f"unlocked {username}")


@app.command("role", epilog=examples("fraudrisk users role -u ana --role senior-analyst"))
def set_role(username: Username, role: Annotated[str, typer.Option(help="The new role.")]) -> None:
    """Change a user's role."""
    _change("set_role", username, role)
    console.print(f"{username} is now {role}")


@app.command("reset-mfa", epilog=examples("fraudrisk users reset-mfa -u ana"))
def reset_mfa(username: Username) -> None:
    """New TOTP seed and recovery codes (printed once); ends the user's sessions."""
    from fraudrisk.identity.errors import IdentityError  # deferred: with the service

    try:
        enrolment = _identity().accounts.reset_mfa(_actor(), username)
    except IdentityError as error:
        raise _fail(error) from None
    _show_enrolment(enrolment)


@app.command(
    "permissions",
    epilog=examples("fraudrisk users permissions", "fraudrisk users permissions --markdown"),
)
def permissions(
    markdown: Annotated[bool, typer.Option(help="Print docs/permissions.md.")] = False,
) -> None:
    """Print the permission matrix: what each role may do."""
    from fraudrisk.identity.roles import matrix_markdown  # deferred: with identity

    text = matrix_markdown()
    if markdown:
        sys.stdout.write(text)
    else:
        from rich.markdown import Markdown  # deferred: rich markdown only here

        console.print(Markdown(text))


@token_app.command(
    "create",
    epilog=examples(
        "fraudrisk users token create -u ana",
        "fraudrisk users token create -u ana --scope cases:read --ttl 7 --name nightly-export",
    ),
)
def create_token(
    username: Username,
    scope: Annotated[
        list[str] | None, typer.Option(help="A scope (repeat); default: the role's.")
    ] = None,
    ttl: Annotated[int | None, typer.Option(help="Days it lives (default: the maximum).")] = None,
    name: Annotated[str, typer.Option(help="What the token is for.")] = "api token",
) -> None:
    """Issue a personal API token and print it once (send it as ``Authorization: Bearer``)."""
    from fraudrisk.identity.errors import IdentityError  # deferred: with the service

    try:
        issued = _identity().sessions.create_api_token(
            _actor(),
            username,
            " ".join(scope or ()),
            ttl,
            name,
        )
    except (IdentityError, ValueError) as error:
        raise _fail(error) from None
    console.print(
        f"token {issued.token_id} for {username}, expires {issued.expires_at:%Y-%m-%d}"
        " (shown once):",
        highlight=False,
    )
    sys.stdout.write(issued.token + "\n")


@token_app.command(
    "list",
    epilog=examples("fraudrisk users token list", "fraudrisk users token list -u ana --all"),
)
def list_tokens(
    username: Annotated[str | None, typer.Option("--username", "-u", help="One user's.")] = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also the revoked and expired ones.")
    ] = False,
) -> None:
    """Sessions and personal API tokens: who, scopes, expiry, last use (never the secrets)."""
    from rich.table import Table  # deferred: rich tables only here

    table = Table(title="sessions and API tokens")
    for column in ("id", "user", "kind", "name", "scopes", "expires", "last used", "revoked"):
        table.add_column(column)
    for token in _identity().sessions.tokens(username, active_only=not show_all):
        table.add_row(
            str(token.id),
            token.username,
            token.kind,
            token.name,
            token.scopes or "all of the role",
            f"{token.expires_at:%Y-%m-%d %H:%M}",
            f"{token.last_used_at:%Y-%m-%d %H:%M}" if token.last_used_at else "never",
            f"{token.revoked_at:%Y-%m-%d %H:%M}" if token.revoked_at else "",
        )
    console.print(table)


@token_app.command("revoke", epilog=examples("fraudrisk users token revoke -u ana --id 12"))
def revoke_token(
    username: Username,
    token_id: Annotated[int, typer.Option("--id", help="The token's id (`users token list`).")],
) -> None:
    """Revoke one session or API token of a user now."""
    from fraudrisk.identity.errors import IdentityError  # deferred: with the service

    try:
        _identity().sessions.revoke(_actor(), username, token_id)
    except IdentityError as error:
        raise _fail(error) from None
    console.print(f"token {token_id} of {username} revoked")
