"""The command line: output, exit codes (0 clean, 1 errors, 2 unusable input), and no tracebacks."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance.cli import main
from tests.conftest import FIXTURES, REFERENCE, needs_shared

GUIDE = str(FIXTURES / "guide-transaction")
CLEAN = str(FIXTURES / "conformant-transaction")
LAYER2 = REFERENCE / "layer2"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_clean_transaction_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", CLEAN)
    assert code == 0
    assert out.strip() == "PASS: 12 messages in 1 transaction, 0 errors, 0 warnings"


def test_findings_exit_1_and_read_as_sentences(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", GUIDE)
    assert code == 1
    assert "ERROR   TXN_DOMAIN_CHANGED  " in out
    assert "  $.context.domain must stay the same as in the transaction's first message\n" in out
    assert "  expected: 'flexibility'\n  found:    'deg:flexibility'\n" in out
    assert out.rstrip().endswith("FAIL: 12 messages in 1 transaction, 12 errors, 7 warnings")


def test_json_output_has_every_finding_field(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "validate", "--json", GUIDE)
    doc = json.loads(out)
    assert code == 1
    assert doc["summary"]["errors"] == 12 and doc["summary"]["warnings"] == 7
    first = doc["findings"][0]
    assert set(first) == {"rule_id", "severity", "title", "clause", "action", "transaction_id", "message_id",
                          "source", "index", "path", "must", "expected", "found", "waiver"}
    support = next(f for f in doc["findings"] if f["rule_id"] == "ORD_SUPPORT_REF_ID")
    assert support["found"] is None and support["expected"] == "order-flex-001"


def test_warnings_alone_exit_0(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    body = json.loads((FIXTURES / "conformant-transaction" / "01-search.json").read_text())
    body["context"]["message_id"] = "not-a-uuid"
    (tmp_path / "search.json").write_text(json.dumps(body))
    code, out, _ = run(capsys, "validate", str(tmp_path))
    assert code == 0 and "WARNING CTX_ID_NOT_UUID" in out


@pytest.mark.parametrize("argv, message", [
    (["validate", "/nonexistent/capture.jsonl"], "no such file or folder"),
    (["validate", "--default-ttl", "30 seconds", CLEAN], "not an ISO 8601 duration"),
    (["validate", "--layer2", "/nonexistent.yaml", CLEAN], "no such file"),
    (["validate", "--layer2-dir", CLEAN + "/01-search.json", CLEAN], "is not a folder"),
    (["validate", "--spec", "/nonexistent.yaml", CLEAN], "no such file"),
])
def test_unusable_arguments_exit_2_with_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("deg-conformance: error: ") and message in err and "Traceback" not in err


@needs_shared
def test_the_published_deg_layer2_file_is_refused_with_file_and_line(capsys: pytest.CaptureFixture[str]) -> None:
    broken = LAYER2 / "beckn-missions/DEG2.0/layer2/demand-flexibility/demand_flexibilty.yaml"
    code, _, err = run(capsys, "validate", "--layer2", str(broken), GUIDE)
    assert code == 2
    assert f"{broken}:900:29: not valid YAML: mapping values are not allowed" in err


@needs_shared
def test_a_full_layer2_document_reports_its_own_constraints(capsys: pytest.CaptureFixture[str]) -> None:
    fixed = LAYER2 / "derived/demand_flexibility_1.1.0.indent-fixed.yaml"
    code, out, _ = run(capsys, "validate", "--json", "--layer2", str(fixed), GUIDE)
    found = [(f["rule_id"], f["action"], f["found"]) for f in json.loads(out)["findings"] if f["rule_id"].startswith("L2_")]
    assert ("L2_CONSTRAINT", "on_cancel", "APPLICATION_CANCELLED") in found   # that file lacks CANCELLED
    assert ("L2_CONSTRAINT", "init", "end") in found
    assert code == 1


def test_layer2_dir_finds_packs_by_domain_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    packs = Path(__file__).resolve().parent.parent / "conformance" / "packs" / "demand-flexibility"
    code, out, _ = run(capsys, "validate", "--json", "--layer2-dir", str(packs), GUIDE)
    rules = [(f["rule_id"], f["action"]) for f in json.loads(out)["findings"]]
    # flexibility_1.1.0.yaml is found for every message but init, whose domain is deg:flexibility.
    assert ("L2_PACK_MISSING", "init") in rules and ("L2_STOP_TYPE", "on_init") in rules
    assert ("L2_STOP_TYPE", "init") not in rules


def test_no_layer2_skips_the_taxonomy(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, "validate", "--json", "--no-layer2", GUIDE)
    assert not any(f["rule_id"].startswith("L2_") and f["rule_id"] != "L2_PACK_MISSING"
                   for f in json.loads(out)["findings"])


def test_rules_lists_every_rule_with_id_severity_title_clause(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "rules", "--json")
    rules = json.loads(out)
    assert code == 0
    ids = [r["id"] for r in rules]
    assert len(ids) == len(set(ids)) > 40
    assert {"CTX_TIMESTAMP_FORMAT", "TXN_CALLBACK_MESSAGE_ID", "ORD_NOT_CANCELLED", "CAT_REF_UNRESOLVED",
            "L2_STOP_TYPE", "SCH_REQUIRED"} <= set(ids)
    assert all(r["severity"] in ("error", "warning") and r["title"] and r["clause"] for r in rules)
    code, text, _ = run(capsys, "rules")
    assert "[layer2]" in text and "L2_FULFILLMENT_STATE" in text


def test_console_script_runs_as_a_process() -> None:
    done = subprocess.run([sys.executable, "-m", "conformance.cli", "validate", CLEAN],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stdout.startswith("PASS")


def test_bad_usage_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["validate"])
    assert exc.value.code == 2
