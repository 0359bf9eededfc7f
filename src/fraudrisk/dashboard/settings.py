"""The dashboard's settings (``FRAUDRISK_DASHBOARD__*``), read by ``fraudrisk dashboard serve``."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class DashboardSettings(BaseSettings):
    """How the dashboard is served; the case service underneath reads the platform settings."""

    model_config = SettingsConfigDict(env_prefix="FRAUDRISK_DASHBOARD__", extra="ignore")

    port: int = Field(8095, ge=1, le=65535, description="Port of `fraudrisk dashboard serve`.")
    secure_cookies: bool = Field(
        True,
        description="Send the session cookie only over HTTPS. Off only for plain HTTP on a "
        "loopback address (`serve --insecure-http`); serve refuses it on any other address.",
    )
    assets_dir: str = Field(
        "",
        description="Folder of the vendored front-end files (htmx, ECharts); empty = the "
        "build of the pinned lockfile under ~/.cache/fraudrisk/dashboard-assets.",
    )
