"""deg-conformance: conformance checks for Beckn 1.1.0 apps on DEG (Digital Energy Grid) networks.

The names below are the public surface; everything else is internal and may change.

    from conformance import Engine, load_transcript
    report = Engine().check(load_transcript([Path("capture.jsonl")]))
    report = check_capture([Path("capture.jsonl")], Engine())  # the same, transaction by transaction
"""
from importlib import metadata

from conformance.engine import Engine, Report
from conformance.errors import ConfigError
from conformance.findings import Finding, Severity
from conformance.layer2 import Layer2
from conformance.messages import Message
from conformance.rules import Rule, Settings, catalogue
from conformance.schemas import SchemaSet
from conformance.stream import check as check_capture
from conformance.transcript import load as load_transcript

try:
    __version__ = metadata.version("deg-conformance")
except metadata.PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"

__all__ = [
    "ConfigError", "Engine", "Finding", "Layer2", "Message", "Report", "Rule", "SchemaSet", "Settings",
    "Severity", "__version__", "catalogue", "check_capture", "load_transcript",
]
