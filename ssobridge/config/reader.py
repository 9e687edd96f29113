"""Reading the TOML file: "${NAME}" substitution, and typed reads from one table that collect problems.

"${NAME}" inside a string value is replaced from the environment, else from a .env file beside the
config file (the environment wins), else from the file that NAME_FILE names (Docker and Kubernetes
secrets; one trailing newline stripped). An undefined NAME, or a NAME_FILE that cannot be read, is a
config error. Any other '$' is literal.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

from .settings import defaults

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_TYPE_WORDS = {"str": "string", "int": "whole number", "float": "number", "bool": "true or false",
               "list": "list", "dict": "table"}
_FROM_SETTINGS: Any = object()  # a read's default: the settings field of the same name


class ConfigError(Exception):
    """The configuration cannot be used; `problems` lists each one as 'key: what is wrong'."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid configuration:\n" + "\n".join(f"  - {p}" for p in problems))


def read_toml(path: Path, problems: list[str]) -> dict:
    """The file's TOML with ${NAME} substituted; a file that cannot be read at all raises ConfigError."""
    try:
        text = path.read_text(encoding="utf-8")
        raw = tomllib.loads(text)
    except FileNotFoundError:
        raise ConfigError([f"{path.absolute()}: file not found"]) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError([f"{path}: cannot read: {e}"]) from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError([f"{path}: not valid TOML: {e}{_marked_line(text, str(e))}"]) from None
    return _substitute(raw, "", _Environment(path.parent / ".env"), problems)


_AT_LINE = re.compile(r"\(at line (\d+), column (\d+)\)$")


def _marked_line(text: str, error: str) -> str:
    """The line tomllib's error names, with a marker under its column (tomllib gives both only in the
    message on Python 3.11)."""
    at = _AT_LINE.search(error)
    if not at:
        return ""  # "at end of document": no line to show
    number, column = int(at.group(1)), int(at.group(2))
    lines = text.split("\n")  # as tomllib counts: str.splitlines would also split at \r, \x0c, ...
    line = lines[number - 1].rstrip("\r") if number <= len(lines) else ""
    # Tabs stay tabs under the marker, so it lines up in a terminal whatever its tab width.
    pad = "".join(c if c == "\t" else " " for c in line[:column - 1])
    gutter = f"{number} | "
    return f"\n      {gutter}{line}\n      {' ' * (len(gutter) - 2)}| {pad}^"


class _Environment:
    """Looks NAME up in os.environ, then in the .env file beside the config (read once, lazily), then in
    the file NAME_FILE names (itself from os.environ or .env)."""

    def __init__(self, dotenv_path: Path):
        self._path = dotenv_path
        self._dotenv: dict[str, str | None] | None = None

    def _variable(self, name: str) -> str | None:
        if name in os.environ:
            return os.environ[name]
        if self._dotenv is None:
            # Literal values: a password with "${...}" in it is a password, not a reference to expand.
            self._dotenv = dotenv_values(self._path, interpolate=False) if self._path.is_file() else {}
        return self._dotenv.get(name)

    def get(self, name: str) -> str | None:
        """NAME's value; None when neither NAME nor NAME_FILE is set; ValueError when NAME_FILE's file
        cannot be read (the message names NAME_FILE and the path, never any content)."""
        value = self._variable(name)
        if value is not None:
            return value
        path = self._variable(f"{name}_FILE")
        if path is None:
            return None
        try:
            text = Path(path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ValueError(f"{name} is unset and {name}_FILE names {path}, which does not exist") from None
        except (OSError, UnicodeDecodeError) as e:
            reason = e.strerror if isinstance(e, OSError) and e.strerror else "not UTF-8 text"
            raise ValueError(f"{name} is unset and {name}_FILE names {path}, which cannot be read: {reason}") \
                from None
        # One trailing newline, as `echo secret > file` and most editors leave it; a secret never ends in one.
        return text[:-2] if text.endswith("\r\n") else text[:-1] if text.endswith("\n") else text


def _substitute(value: Any, key: str, env: _Environment, problems: list[str]) -> Any:
    if isinstance(value, str):
        def replace(match: re.Match) -> str:
            name = match.group(1)
            try:
                found = env.get(name)
            except ValueError as e:
                problems.append(f"{key}: ${{{name}}}: {e}")
                return match.group(0)
            if found is None:
                problems.append(f"{key}: ${{{name}}} is not defined in the environment or in .env "
                                f"(nor is {name}_FILE)")
                return match.group(0)  # left as is, so the one problem is not reported twice
            return found
        return _PLACEHOLDER.sub(replace, value)
    if isinstance(value, dict):
        return {k: _substitute(v, f"{key}.{k}" if key else k, env, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, f"{key}[{i}]", env, problems) for i, v in enumerate(value)]
    return value


class Table:
    """Typed reads from one TOML table; wrong types and unknown keys become problems, not exceptions.

    A table read into a settings dataclass (`settings`) takes the default of each key from the field of
    the same name, so every default is written once, on the dataclass. The keys read are the keys the
    table knows: reject_unknown reports any other, with the closest known key as a suggestion.
    """

    def __init__(self, data: Any, key: str, problems: list[str], settings: type | None = None):
        self.key = key
        self.problems = problems
        if not isinstance(data, dict):
            self.problem("", "must be a table")
            data = {}
        self.data = data
        self.defaults = defaults(settings) if settings is not None else {}
        self.used: set[str] = set()

    def problem(self, name: str, text: str) -> None:
        self.problems.append(f"{self.key}.{name}: {text}" if name else f"{self.key}: {text}")

    def default(self, name: str) -> Any:
        return self.defaults.get(name)

    def knows(self, *names: str) -> None:
        """Keys read elsewhere (another parser, or only under a condition): not unknown."""
        self.used.update(names)

    def get(self, name: str, kind: type | tuple, default: Any = _FROM_SETTINGS, required: bool = False) -> Any:
        self.used.add(name)
        if default is _FROM_SETTINGS:
            default = self.default(name)
        if name not in self.data:
            if required:
                self.problem(name, "is required")
            return default
        value = self.data[name]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            kinds = kind if isinstance(kind, tuple) else (kind,)
            names = " or ".join(_TYPE_WORDS.get(k.__name__, k.__name__) for k in kinds)
            self.problem(name, f"must be a {names}, not {value!r}")
            return default
        return value

    def text(self, name: str, default: str | None = _FROM_SETTINGS, required: bool = False) -> str | None:
        value = self.get(name, str, default, required)
        if required and value is not None and not value.strip():
            self.problem(name, "must not be empty")
        return value

    def text_or_default(self, name: str, default: str = _FROM_SETTINGS) -> str:
        """A string where an empty one, too, means the default."""
        default = self.default(name) if default is _FROM_SETTINGS else default
        return self.text(name, default) or default

    def texts(self, name: str, default: tuple[str, ...] = _FROM_SETTINGS) -> tuple[str, ...]:
        if default is _FROM_SETTINGS:
            default = self.default(name) or ()
        value = self.get(name, list, list(default))
        if not all(isinstance(v, str) for v in value):
            self.problem(name, "must be a list of strings")
            return default
        return tuple(value)

    def names(self, name: str, default: tuple[str, ...] | None = ()) -> tuple[str, ...] | None:
        """Group or department names: one string, or a list of non-empty strings."""
        value = self.get(name, (list, str), None)
        if value is None:
            return default
        value = [value] if isinstance(value, str) else value
        if not all(isinstance(v, str) and v.strip() for v in value):
            self.problem(name, "must be a list of names")
            return default
        return tuple(v.strip() for v in value)

    def member(self, name: str, kind: type[StrEnum], value: Any, words: str | None = None) -> Any:
        """`value` (as read) as a member of `kind`: the one place a choice's text becomes its type. A value that
        is none of them is a problem (`words`, else "must be one of ..."), and gives the default (None when the
        field has none), as does a value of None (not given, or of a wrong type: already a problem)."""
        if value is None:
            return self.default(name)
        try:
            return kind(value)
        except ValueError:
            self.problem(name, words or f"must be one of {', '.join(kind)}, not {value!r}")
            return self.default(name)

    def positive(self, name: str, kind: type, default: float = _FROM_SETTINGS) -> Any:
        default = self.default(name) if default is _FROM_SETTINGS else default
        value = self.get(name, kind, default)
        if value <= 0:
            self.problem(name, "must be greater than 0")
            return default
        return value

    def reject_unknown(self) -> None:
        known = sorted(self.used)
        for name in self.data:
            if name not in self.used:
                close = difflib.get_close_matches(name, known, n=1)
                self.problem(name, f"unknown key; did you mean {close[0]}?" if close else "unknown key (misspelt?)")
