"""The one report renderer: jinja2 templates in ``ownchat/templates`` with shared filters.

Every report ownchat writes (a run's ``report.html``, the judge report, IFEval and GSM8K reports)
is a template here, rendered from numbers the stages already computed: rebuilding a report never
re-runs a model. HTML pages are self-contained (CSS inline, charts as base64 PNG) so they can be
mailed or archived as one file.
"""

from __future__ import annotations

import base64
import os
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader


def pct(x: float | None, digits: int = 1) -> str:
    """0.256 -> '25.6%'; None -> 'n/a'."""
    return "n/a" if x is None else f"{100 * x:.{digits}f}%"


def ci(bounds: list[float | None] | tuple[float | None, ...] | None, digits: int = 1) -> str:
    """[0.2, 0.4] -> '[20.0%, 40.0%]'; missing -> 'n/a'."""
    if not bounds or bounds[0] is None:
        return "n/a"
    return f"[{100 * bounds[0]:.{digits}f}%, {100 * bounds[1]:.{digits}f}%]"


def b64png(path: str | Path) -> str | None:
    """A PNG file as base64 for an inline <img>, or None when it is missing."""
    try:
        return base64.b64encode(Path(path).read_bytes()).decode()
    except OSError:
        return None


@lru_cache(maxsize=2)
def _env(autoescape: bool) -> Environment:
    env = Environment(loader=PackageLoader("ownchat", "templates"),
                      autoescape=autoescape,
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(pct=pct, ci=ci)
    return env


def render(template: str, **context: Any) -> str:
    """Render ``ownchat/templates/<template>`` (HTML templates are autoescaped, Markdown ones not)."""
    return _env(template.endswith(".html.jinja")).get_template(template).render(**context)


def write_report(path: Path, template: str, **context: Any) -> Path:
    """Render and write atomically (a half-written report never replaces a whole one)."""
    text = render(template, **context)
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path
