"""certificate.html: a certificate on one self-contained page (verdict, participant, coverage, failing rules with
their clauses, every verdict), readable in any browser without Node.js or Allure, calling nobody when opened.

The page is well-formed XML as well as HTML (every element closed), so that tools can read it either way; every
value from the certificate is escaped. It is a view: only `deg-conformance verify-certificate` proves anything.
"""
from __future__ import annotations

from html import escape
from typing import Any, Iterable, Mapping, Sequence

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; } td, th { border: 1px solid #ccc; padding: 0.25em 0.6em;
text-align: left; vertical-align: top; } th { background: #f3f3f3; }
.verdict { padding: 0.6em 1em; color: #fff; font-weight: bold; } .pass { background: #2e7d32; }
.fail { background: #c62828; } .no-verdict { background: #6d6d6d; }
.passed { color: #2e7d32; } .failed, .broken { color: #c62828; } .skipped { color: #6d6d6d; }
code { font-size: 0.95em; } .note { color: #555; }
"""


def page_html(certificate: Mapping[str, Any]) -> str:
    """The page of a certificate (the signed document, or its body before signing)."""
    participant, run, issuer = certificate["participant"], certificate["run"], certificate["issuer"]
    verdict = certificate["verdict"]
    who = participant["subscriber_id"] or participant["target"] or "the reference network"
    title = f"DEG conformance certificate: {verdict.upper()}, {who} as {participant['role'].upper()}"
    parts = [
        '<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml" lang="en">',
        f'<head><meta charset="utf-8"/><title>{escape(title)}</title><style>{STYLE}</style></head>',
        f"<body><h1>{escape(title)}</h1>",
        f'<p class="verdict {escape(verdict.replace(" ", "-"))}">{escape(verdict.upper())}: '
        f"{escape(certificate['verdict_reason'])}</p>",
        "<h2>Participant</h2>",
        _pairs([("subscriber id", participant["subscriber_id"] or "(not established by the run)"),
                ("role", participant["role"]), ("target", participant["target"] or "the reference network"),
                ("domain", participant["domain"]), ("use case", participant["use_case"])]),
        "<h2>Run</h2>",
        _pairs([("run id", run["run_id"]), ("started", run["started"]), ("ended", run["ended"]),
                ("exit code", run["exit_code"]), ("interrupted", "yes" if run["interrupted"] else "no"),
                ("harness", f"deg-conformance {certificate['harness']['version']}"),
                ("issued", certificate["issued_at"]),
                ("signed by", f"{issuer['subscriber_id']} (key {issuer['key_id']})")]),
        *([f"<h2>Set-up errors</h2><ul>{''.join(f'<li>{escape(e)}</li>' for e in run['setup_errors'])}</ul>"]
          if run["setup_errors"] else []),
        "<h2>Failing rules</h2>",
        _table(["rule", "severity", "what it checks", "clause", "findings", "in"],
               [[f"<code>{escape(r['rule_id'])}</code>", escape(r["severity"]), escape(r["title"] or ""),
                 escape(r["clause"] or ""), str(r["findings"]), escape(", ".join(r["scenarios"]))]
                for r in certificate["failed_rules"]], empty="None: the participant broke no rule."),
        "<h2>Coverage</h2>",
        _coverage(certificate["coverage"]),
        "<h2>Scenarios and probes</h2>",
        _table(["id", "kind", "verdict", "why", "failed rules"],
               [[escape(r["id"]), escape(r["kind"]), _status(r["status"]), escape(r["reason"] or ""),
                 escape(", ".join(r["rules"]))] for r in certificate["results"]],
               empty="None were played."),
        '<p class="note">This page shows certificate.json; only <code>deg-conformance verify-certificate '
        "certificate.json --public-key KEY</code> (or <code>--registry URL --subscriber-id ID</code>) proves that "
        "it and the report files beside it are as the operator signed them.</p>",
        "</body></html>\n",
    ]
    return "\n".join(parts)


def _coverage(coverage: Any) -> str:
    """The coverage table as the certification stated it; every list of records as a table of its fields, so that
    a field the certify command adds is shown, not lost."""
    if not isinstance(coverage, Mapping):
        return ('<p class="note">No coverage stated: this run played no certification profile '
                "(<code>deg-conformance certify</code> states which actions, rules and probes it exercised).</p>")
    complete = coverage.get("complete") is True
    out = [f"<p>Required coverage: <strong>{'complete' if complete else 'MISSING'}</strong></p>"]
    required = coverage.get("required")
    if isinstance(required, Mapping) and required:
        out.append("<p>Required: " + "; ".join(f"{escape(str(kind))}: {escape(_cell(names)) or 'none'}"
                                               for kind, names in required.items()) + "</p>")
    if coverage.get("missing"):
        out += ["<h3>Missing</h3>", _records(coverage["missing"])]
    if coverage.get("actions"):
        out += ["<h3>Actions</h3>", _records(coverage["actions"])]
    rules = coverage.get("rules")
    if isinstance(rules, Mapping):
        evaluated = rules.get("evaluated") or []
        out.append(f"<h3>Rules</h3><p>Evaluated at least once ({len(evaluated)}): "
                   f"{escape(', '.join(map(str, evaluated))) or 'none'}</p>")
        if rules.get("never"):
            out += ["<p>Never evaluated:</p>", _records(rules["never"])]
    if coverage.get("probes"):
        out += ["<h3>Probes</h3>", _records(coverage["probes"])]
    return "\n".join(out)


def _status(status: str) -> str:
    return f'<span class="{escape(status)}">{escape(status)}</span>'


def _records(records: Any) -> str:
    rows = [r if isinstance(r, Mapping) else {"value": r} for r in (records if isinstance(records, list) else [])]
    columns = list(dict.fromkeys(key for r in rows for key in r))
    return _table([escape(str(c)) for c in columns], [[escape(_cell(r.get(c))) for c in columns] for r in rows],
                  empty="none", escaped=True)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value))
    return str(value)


def _pairs(pairs: Iterable[tuple[str, Any]]) -> str:
    return "<table>" + "".join(f"<tr><th>{escape(k)}</th><td>{escape(str(v))}</td></tr>" for k, v in pairs) + "</table>"


def _table(headings: Sequence[str], rows: Sequence[Sequence[str]], *, empty: str, escaped: bool = False) -> str:
    """Rows of cells already escaped (HTML); headings escaped here unless `escaped`."""
    if not rows:
        return f"<p>{escape(empty)}</p>"
    head = "".join(f"<th>{h if escaped else escape(h)}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
