"""Errors that stop a run before any message is checked (exit code 2): bad files, bad arguments."""
from __future__ import annotations

from pathlib import Path

import yaml


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE = 0, 1, 2, 3
"""What every command exits with: all passed; conformance failures; unusable input (or a scenario that could
not be played to its end); the target could not be reached."""


class ConfigError(Exception):
    """Input the harness cannot use at all. The text names the file (and line) and what is wrong."""


def load_yaml(path: Path) -> object:
    """Parse a YAML (or JSON) file, turning every failure into a ConfigError that points at the line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{where}: not valid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
