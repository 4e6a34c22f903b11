"""Reading and showing the values products write in their settings (durations, networks).

Kept apart from the parsers because builders, the model and rules need the values, not the syntax.
"""
from __future__ import annotations

import re

# Dovecot: "2 mins", "120 secs", "1h", "500 ms" (settings of type time; a bare number is seconds)
_DOVECOT_UNITS = {
    "ms": 0.001, "msec": 0.001, "msecs": 0.001, "millisecond": 0.001, "milliseconds": 0.001,
    "s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
    "m": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
    "h": 3600, "hour": 3600, "hours": 3600,
    "d": 86400, "day": 86400, "days": 86400,
    "w": 604800, "week": 604800, "weeks": 604800,
}
_DOVECOT_TERM = re.compile(r"\s*(\d+)\s*([a-zA-Z]*)")


def dovecot_seconds(text: str) -> float | None:
    """Seconds for a Dovecot time value ("2 mins", "1h 30m"), or None if it is not one."""
    text = text.strip().strip('"')
    if not text:
        return None
    total, pos = 0.0, 0
    while pos < len(text):
        match = _DOVECOT_TERM.match(text, pos)
        if not match:
            return None
        unit = match.group(2).lower() or "s"
        if unit not in _DOVECOT_UNITS:
            return None
        total += int(match.group(1)) * _DOVECOT_UNITS[unit]
        pos = match.end()
        while pos < len(text) and text[pos] == " ":
            pos += 1
    return total


def human_seconds(seconds: float) -> str:
    """120 -> '2m', 90 -> '90s', 1860 -> '31m': how a user would write it."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if seconds == int(seconds):
        return f"{int(seconds)}s"
    return f"{seconds:g}s"


def network_text(network) -> str:
    """A trusted network as a user would write it: a single address without its /32 or /128."""
    return str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)
