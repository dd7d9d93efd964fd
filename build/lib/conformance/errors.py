"""Errors that stop a run before any message is checked (exit code 2): bad files, bad arguments."""
from __future__ import annotations

from pathlib import Path

import yaml


EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_SETUP, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 4, 5, 130
"""What every command exits with, so that CI can tell the target's failures from everyone else's: all passed;
the target broke a rule; unusable input (or a scenario that could not be played to its end); the target could
not be reached at all; the run's set-up is wrong (the harness's key unknown to the registry or the target, the
registry unreachable), so no verdict on the target is possible; the harness itself failed (a bug: the message
says where the traceback was written); the run was interrupted (Ctrl-C, as shells report a SIGINT)."""


class ConfigError(Exception):
    """Input the harness cannot use at all. The text names the file (and line) and what is wrong."""


class SetupError(Exception):
    """The run cannot give a verdict on the target because of how it was set up (exit code 4): the harness's
    key is not where the target looks it up, the registry cannot be reached. The text names the fix."""


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
