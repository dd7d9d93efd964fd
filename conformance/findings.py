"""The finding: the one value every check produces and every report consumes."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from conformance._types import PathPart


class Severity(str, enum.Enum):
    """An error fails certification; a warning is reported but does not change the exit code."""

    ERROR = "error"
    WARNING = "warning"


def json_path(parts: Iterable[PathPart]) -> str:
    """Render path steps as a JSONPath (`$.message.order.items[0].id`) a participant can paste into jq."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif part.isidentifier():
            out.append(f".{part}")
        else:
            out.append(f"[{part!r}]")
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Violation:
    """What a rule reports: where in the message, what it must be, what it is. The engine adds the rest."""

    path: Sequence[PathPart]
    expected: Any
    found: Any
    must: str | None = None
    """Overrides the rule's predicate when one rule can be broken in several ways."""
    clause: str | None = None
    """Overrides the rule's clause when the text that was broken depends on the message: a rule id several Layer-2
    packs declare cites the pack of the message's use case."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule on one message, with everything needed to fix the app from the finding alone."""

    rule_id: str
    severity: Severity
    title: str
    clause: str
    path: str
    must: str
    expected: Any
    found: Any
    action: str | None = None
    transaction_id: str | None = None
    message_id: str | None = None
    source: str | None = None
    index: int | None = None
    waiver: str | None = None
    """Why the run's waivers let this finding stand without failing (conformance/waivers.py)."""
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def where(self) -> str:
        """`file:index`, the place in the captured traffic."""
        if self.source is None:
            return "-"
        return self.source if self.index is None else f"{self.source}:{self.index}"

    def text(self) -> str:
        """The finding as a reader sees it: `<path> must <predicate>`, then expected and found."""
        label = f"{self.severity.value.upper():7}" if self.waiver is None else f"WAIVED {self.severity.value}"
        head = (
            f"{label} {self.rule_id}  {self.where}  "
            f"{self.action or '?'} txn={self.transaction_id or '?'} msg={self.message_id or '?'}"
        )
        return (
            f"{head}\n  {self.path} must {self.must}\n"
            f"  expected: {_show(self.expected)}\n  found:    {_show(self.found)}\n"
            f"  clause:   {self.clause}" + (f"\n  waived:   {self.waiver}" if self.waiver is not None else "")
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule_id": self.rule_id,
            "severity": self.severity.value,
            "title": self.title,
            "clause": self.clause,
            "action": self.action,
            "transaction_id": self.transaction_id,
            "message_id": self.message_id,
            "source": self.source,
            "index": self.index,
            "path": self.path,
            "must": self.must,
            "expected": plain(self.expected),
            "found": plain(self.found),
            "waiver": self.waiver,
        }


class Prose(str):
    """A description written by the runner ("on_search within 30 s"), shown as it is; a value from a message is
    shown quoted, so that `'30'` and `30` differ. Quoting prose that quotes values would quote twice."""


class _Absent:
    """Marks a value that is not in the message at all, as distinct from a JSON null."""

    _instance: "_Absent | None" = None

    def __new__(cls) -> "_Absent":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "(absent)"


ABSENT: Any = _Absent()


def plain(value: Any) -> Any:
    """A JSON-ready copy of an expected/found value: ABSENT becomes null."""
    return None if value is ABSENT else value


def _show(value: Any) -> str:
    if value is ABSENT:
        return "(absent)"
    if value is None:
        return "null"
    if isinstance(value, Prose):
        return value if len(value) <= 400 else value[:400] + "…"
    if isinstance(value, str):
        return repr(value) if len(value) <= 200 else repr(value[:200] + "…")
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "…"
