"""Template helpers for the console's look: sizes, durations, navigation state."""

from __future__ import annotations

from datetime import UTC, datetime

from django import template
from django.template import Context
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timesince

register = template.Library()

_SIZE_UNITS = ("kB", "MB", "GB", "TB")
# Pages of other apps that belong to a function; they keep "Functions" selected.
_FUNCTION_APPS = frozenset({"functions", "code", "invocations", "monitoring"})


@register.filter
def human_bytes(value: int | None) -> str:
    """Sizes the way the Lambda console prints them: "299 byte", "1.2 kB", "5.4 MB"."""
    if value is None:
        return "-"
    size = float(value)
    if size < 1000:
        return f"{int(size)} byte"
    unit = -1
    while size >= 1000 and unit < len(_SIZE_UNITS) - 1:
        size /= 1000
        unit += 1
    return f"{size:.1f} {_SIZE_UNITS[unit]}"


@register.filter
def minutes_seconds(total_seconds: int | None) -> str:
    """A timeout as the console shows it: "0 min 3 sec"."""
    if total_seconds is None:
        return "-"
    minutes, seconds = divmod(int(total_seconds), 60)
    return f"{minutes} min {seconds} sec"


@register.simple_tag(takes_context=True)
def nav_section(context: Context) -> str:
    """Which side-navigation entry the current page belongs to."""
    request = context.get("request")
    match = getattr(request, "resolver_match", None)
    if match is None:
        return ""
    if match.app_name == "functions" and match.url_name in {"roles", "blueprints"}:
        return str(match.url_name)
    if match.app_name == "monitoring" and match.url_name == "dashboard":
        return "dashboard"
    if match.app_name in _FUNCTION_APPS:
        return "functions"
    return ""


@register.simple_tag
def relative_time(value: datetime | None) -> str:
    """A <time> element reading "5 minutes ago", with the exact time on hover."""
    if value is None:
        return "-"
    recent = (timezone.now() - value).total_seconds() < 60
    text = "just now" if recent else f"{timesince(value, depth=1)} ago"
    exact = value.astimezone(UTC).strftime("%B %d, %Y, %H:%M:%S (UTC)")
    return format_html('<time datetime="{}" title="{}">{}</time>', value.isoformat(), exact, text)
