"""Settings for `run` and `probe` from a file and the environment, under the command line.

A CI job keeps its certification settings in the repository (`deg-conformance.yaml`, or `[tool.deg-conformance]`
in pyproject.toml) and its secrets and URLs in the environment (`DEG_CONFORMANCE_KEY_FILE`, ...). Every option of
`run` and `probe` can come from either; a flag on the command line wins over both, and the environment over the
file. Nothing here knows what an option means: the command line's parser says which options exist, their types
and their choices, so a new option is a new setting without code here.
"""
from __future__ import annotations

import argparse
import os
import tomllib
from pathlib import Path
from typing import Any, Mapping

from conformance.errors import ConfigError, load_yaml

ENV_PREFIX = "DEG_CONFORMANCE_"
FILE_NAMES = ("deg-conformance.yaml", "deg-conformance.yml")
TRUE, FALSE = frozenset({"1", "true", "yes", "on"}), frozenset({"0", "false", "no", "off", ""})


def settings_file(explicit: Path | None) -> tuple[dict[str, Any], Path | None]:
    """The settings file's values and where it is: `explicit` (--config), else deg-conformance.yaml in the
    working folder, else its pyproject.toml's [tool.deg-conformance]; none at all is fine."""
    if explicit is not None:
        if explicit.suffix == ".toml":
            return _pyproject(explicit, required=True), explicit
        return _yaml(explicit), explicit
    for name in FILE_NAMES:
        if Path(name).is_file():
            return _yaml(Path(name)), Path(name)
    if Path("pyproject.toml").is_file():
        found = _pyproject(Path("pyproject.toml"), required=False)
        return found, Path("pyproject.toml") if found else None
    return {}, None


def _yaml(path: Path) -> dict[str, Any]:
    doc = load_yaml(path)
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the settings must be a mapping of option: value")
    return {str(k): v for k, v in doc.items()}


def _pyproject(path: Path, *, required: bool) -> dict[str, Any]:
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    table = doc.get("tool", {}).get("deg-conformance")
    if table is None and required:
        raise ConfigError(f"{path}: no [tool.deg-conformance] table")
    if table is not None and not isinstance(table, dict):
        raise ConfigError(f"{path}: [tool.deg-conformance] must be a table")
    return dict(table or {})


def layer(parser: argparse.ArgumentParser, args: argparse.Namespace, defaults: Mapping[str, Any],
          environ: Mapping[str, str] | None = None, *, others: frozenset[str] = frozenset()) -> Path | None:
    """Fill every option `args` did not get on the command line (None) from the environment, then the settings
    file, then `defaults`; returns the settings file used. Options of one mutually exclusive group given on the
    command line keep the others of the group out of the file and the environment. `others` are the options of
    the other commands that share the settings (run's scenarios, replay's captures): left alone here, not refused."""
    environ = os.environ if environ is None else environ
    actions = {a.dest: a for a in parser._actions if a.dest not in ("help", "config")}  # noqa: SLF001
    named = environ.get(f"{ENV_PREFIX}CONFIG")  # the settings file by environment, under --config as every setting
    values, path = settings_file(getattr(args, "config", None) or (Path(named) if named else None))
    base = path.parent if path is not None else Path(".")
    known = (actions.keys() | others) - {"help", "config"}
    from_file = {key.replace("-", "_"): value for key, value in values.items()}
    unknown = sorted(set(from_file) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown settings {', '.join(unknown)}; known: "
                          f"{', '.join(sorted(k.replace('_', '-') for k in known))}")
    strangers = sorted(k for k in environ if k.startswith(ENV_PREFIX)
                       and k[len(ENV_PREFIX):].lower() not in known and k != f"{ENV_PREFIX}CONFIG")
    if strangers:
        raise ConfigError(f"unknown environment settings {', '.join(strangers)}; known: "
                          f"{', '.join(ENV_PREFIX + k.upper() for k in sorted(known))}")
    given = {dest for dest in actions if getattr(args, dest, None) not in (None, [])}
    excluded = {other.dest for group in parser._mutually_exclusive_groups  # noqa: SLF001
                for other in group._group_actions if any(a.dest in given for a in group._group_actions)}  # noqa: SLF001
    for dest, action in actions.items():
        if dest in given or dest in excluded:
            continue
        env = environ.get(ENV_PREFIX + dest.upper())
        if env is not None:
            setattr(args, dest, _converted(action, _from_env(action, env), Path("."), f"{ENV_PREFIX}{dest.upper()}"))
        elif dest in from_file:
            setattr(args, dest, _converted(action, from_file[dest], base, f"{path}: {dest.replace('_', '-')}"))
        elif getattr(args, dest, None) in (None, []):
            setattr(args, dest, defaults.get(dest, getattr(args, dest, None)))
    return path


def _many(action: argparse.Action) -> bool:
    return isinstance(action, argparse._AppendAction) or action.nargs in ("*", "+")  # noqa: SLF001


def _flag(action: argparse.Action) -> bool:
    return isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction))  # noqa: SLF001


def _from_env(action: argparse.Action, text: str) -> Any:
    """An environment variable's text as the option's value: a flag is yes/no, a repeatable option is a comma
    separated list."""
    if _flag(action):
        lowered = text.strip().lower()
        if lowered not in TRUE | FALSE:
            raise ConfigError(f"{ENV_PREFIX}{action.dest.upper()}={text!r}: write 1 or 0 (true or false)")
        return lowered in TRUE
    if _many(action):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _converted(action: argparse.Action, value: Any, base: Path, where: str) -> Any:
    """A setting as the command line would have given it: typed, checked against the choices, paths in a
    file relative to the file."""
    if _flag(action):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: write true or false, not {value!r}")
        return value
    if _many(action):
        items = value if isinstance(value, list) else [value]
        return [_one(action, item, base, where) for item in items]
    return _one(action, value, base, where)


def _one(action: argparse.Action, value: Any, base: Path, where: str) -> Any:
    if isinstance(value, (dict, list)) or value is None:
        raise ConfigError(f"{where}: write a single value, not {type(value).__name__}")
    text = str(value)
    if action.type is Path or (action.type is None and action.dest == "scenarios"):
        path = Path(text)
        return path if path.is_absolute() else base / path
    if callable(action.type):
        try:
            converted = action.type(text)
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: {text!r} is not a valid value") from None
    else:
        converted = text
    if action.choices is not None and converted not in action.choices:
        raise ConfigError(f"{where}: {text!r} is not one of {', '.join(map(str, action.choices))}")
    return converted
