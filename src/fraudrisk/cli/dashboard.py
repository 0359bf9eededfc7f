"""``fraudrisk dashboard``: serve the web dashboard, build its front-end assets."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer

from fraudrisk.config import get_settings
from fraudrisk.console import console, examples
from fraudrisk.dashboard.assets import AssetBuildError, ensure_built  # stdlib only: fast
from fraudrisk.io.network import is_loopback

app = typer.Typer(
    name="dashboard",
    help="The web dashboard for analysts, risk teams and MLOps engineers.",
    no_args_is_help=True,
)


@app.command(
    "serve",
    epilog=examples(
        "fraudrisk dashboard serve --insecure-http   # http://127.0.0.1:8095 on this machine",
        "fraudrisk dashboard serve --port 8443 --host 0.0.0.0   # behind a TLS proxy",
        "FRAUDRISK_DB__URL=postgresql+psycopg://… fraudrisk dashboard serve",
    ),
)
def serve(
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(help="Port (default: FRAUDRISK_DASHBOARD__PORT, 8095).")
    ] = None,
    insecure_http: Annotated[
        bool,
        typer.Option(
            help="Plain HTTP on a loopback address: the session cookie without Secure "
            "(refused on any other address)."
        ),
    ] = False,
) -> None:
    """Serve the dashboard over the case service (the database of the platform settings).

    Reads the settings ``fraudrisk cases serve`` reads (FRAUDRISK_DB__URL, FRAUDRISK_IDENTITY__*,
    FRAUDRISK_CASES__*, FRAUDRISK_HOME) and FRAUDRISK_DASHBOARD__PORT / __SECURE_COOKIES /
    __ASSETS_DIR. Builds the vendored assets first if they are missing (npm, once).
    """
    import uvicorn  # heavy: uvicorn, fastapi

    from fraudrisk.cases.service import case_services
    from fraudrisk.dashboard.app import create_dashboard
    from fraudrisk.dashboard.settings import DashboardSettings

    options = DashboardSettings()
    secure = options.secure_cookies and not insecure_http
    if not secure and not is_loopback(host):
        raise typer.BadParameter(
            f"plain HTTP only on a loopback address, not {host}", param_hint="--host"
        )
    vendor = Path(options.assets_dir) if options.assets_dir else _built_assets()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    services = case_services(get_settings())
    dashboard = create_dashboard(services, secure_cookies=secure, assets_dir=vendor)
    uvicorn.run(dashboard, host=host, port=port or options.port, log_config=None, access_log=False)


def _built_assets() -> Path:
    """The vendored assets of the pinned lockfile, built now if missing."""
    try:
        return ensure_built()
    except AssetBuildError as error:
        raise typer.Exit(_fail(str(error))) from None


def _fail(message: str) -> int:
    console.print(f"[red]dashboard assets: {message}[/red]")
    return 1


@app.command("assets", epilog=examples("fraudrisk dashboard assets"))
def build_assets() -> None:
    """Vendor the front-end assets (htmx, ECharts) from npm's lockfile, once, into the cache."""
    console.print(f"dashboard assets: {_built_assets()}")


@app.command(
    "screenshots",
    epilog=examples(
        "fraudrisk dashboard screenshots --out docs/screenshots   # the README's pictures",
        "fraudrisk dashboard screenshots --out /tmp/shots",
    ),
)
def screenshots(
    out: Annotated[Path, typer.Option(help="Folder of the PNGs.")] = Path("docs/screenshots"),
) -> None:
    """PNGs of the main pages (1280x900) over a small world built in a temporary folder.

    Serves the dashboard on a free loopback port and drives Debian's Chromium headless
    (/usr/bin/chromium; never a download) through sign-in: sign-in, my queue, a case, the
    policy list, a version with its diff, and the live monitor when the dashboard has one.
    """
    from fraudrisk.dashboard.screenshots import CHROMIUM, take_screenshots  # heavy

    if not Path(CHROMIUM).is_file():
        raise typer.Exit(_fail(f"{CHROMIUM} is missing: apt-get install -y chromium"))
    for path in take_screenshots(out, _built_assets()):
        console.print(f"screenshot: {path}")
