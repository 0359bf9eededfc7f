"""Server-side rendering: the Jinja2 templates, their filters, and one ``render`` for every page.

Every value a template prints goes through :func:`fraudrisk.cards.redact_card_numbers` first
(the environment's ``finalize``): whatever a field holds, a card number never reaches a page.
Autoescaping is on for every template.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import jinja2
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup

from fraudrisk.cards import redact_card_numbers
from fraudrisk.dashboard.nav import links_for
from fraudrisk.dashboard.session import Viewer


def _redacted(value: Any) -> Any:
    """A printed value with any card number redacted (Markup stays Markup)."""
    if value is None:
        return ""
    if isinstance(value, Markup):
        return Markup(redact_card_numbers(str(value)))
    return redact_card_numbers(str(value)) if isinstance(value, str | int) else value


def money(value: float) -> str:
    """An amount as people read it: ``1,234.50``."""
    return f"{value:,.2f}"


def percent(value: float) -> str:
    """A probability as a percentage: ``87.5 %`` (a no-break space: never split)."""
    return f"{100 * value:.1f}\u00a0%"


def when(value: dt.datetime | None) -> str:
    """A stored time (naive UTC) as ``2026-03-02 09:00 UTC``."""
    return "" if value is None else f"{value:%Y-%m-%d %H:%M} UTC"


def duration(seconds: float) -> str:
    """A span as ``2 d 3 h``, ``3 h 05 m`` or ``12 m``."""
    minutes = int(abs(seconds)) // 60
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins:02d} m" if hours else f"{mins} m"


def sla_text(remaining_s: float) -> str:
    """The SLA countdown: ``due in 3 h 05 m`` or ``overdue by 12 m``."""
    span = duration(remaining_s)
    return f"due in {span}" if remaining_s >= 0 else f"overdue by {span}"


def environment() -> jinja2.Environment:
    """The templates of the package, autoescaped, every output redacted."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("fraudrisk.dashboard", "templates"),
        autoescape=True,
        finalize=_redacted,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(money=money, percent=percent, when=when, sla=sla_text)
    return env


def render(
    request: Request,
    template: str,
    viewer: Viewer | None,
    status: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page (or an htmx fragment) for the person, with their navigation and CSRF token."""
    env: jinja2.Environment = request.app.state.templates
    values = {
        "request": request,
        "viewer": viewer,
        "user": viewer.principal if viewer else None,
        "links": links_for(viewer.principal) if viewer else [],
        "csrf": viewer.csrf if viewer else "",
        "current": context.pop("current", ""),
        **context,
    }
    return HTMLResponse(env.get_template(template).render(values), status_code=status)
