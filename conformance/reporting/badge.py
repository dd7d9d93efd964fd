"""certificate.svg: a badge of a certificate's verdict, use case, role and date, to show where a README or a
portal shows build badges. Plain SVG (no script, no external font or link), every text escaped."""
from __future__ import annotations

from typing import Any, Mapping
from xml.sax.saxutils import escape, quoteattr

COLOURS = {"pass": "#2e7d32", "fail": "#c62828", "no verdict": "#6d6d6d"}
LABEL = "DEG conformance"
CHAR_WIDTH = 6.6
"""Pixels per character of 11px Verdana, near enough: the badge is sized from its texts."""
PADDING = 10


def badge_svg(certificate: Mapping[str, Any]) -> str:
    """The badge of a certificate (the signed document, or its body before signing)."""
    participant = certificate["participant"]
    verdict = certificate["verdict"]
    value = (f"{verdict.upper()} · {participant['use_case']} · {participant['role'].upper()} · "
             f"{certificate['issued_at'][:10]}")
    left = round(len(LABEL) * CHAR_WIDTH + 2 * PADDING)
    right = round(len(value) * CHAR_WIDTH + 2 * PADDING)
    width = left + right
    title = f"{LABEL}: {value}"
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" role="img" '
            f'aria-label={quoteattr(title)}>\n'
            f"  <title>{escape(title)}</title>\n"
            f'  <rect width="{left}" height="20" fill="#555"/>\n'
            f'  <rect x="{left}" width="{right}" height="20" fill="{COLOURS[verdict]}"/>\n'
            f'  <g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">\n'
            f'    <text x="{left / 2}" y="14">{escape(LABEL)}</text>\n'
            f'    <text x="{left + right / 2}" y="14">{escape(value)}</text>\n'
            f"  </g>\n"
            f"</svg>\n")
