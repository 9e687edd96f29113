"""Directory attributes -> SmarterTrack output variables (EmailAddress, DisplayName, cf_<Field>).

Each output has candidates tried in order; the first that yields a non-empty value wins. A candidate
is an attribute name ("mail") or a template ("{givenName} {sn}") whose attributes must all have a value.
A multi-valued attribute gives its first value, or all values joined when the output sets `join`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable

ATTRIBUTE_NAME = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]*|\d+(?:\.\d+)+)(?:;[A-Za-z0-9-]+)*$")
_FIELD = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class Candidate:
    text: str  # an attribute name, or a template such as "{givenName} {sn}"

    @property
    def is_template(self) -> bool:
        return "{" in self.text

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(_FIELD.findall(self.text)) if self.is_template else (self.text,)

    def problem(self) -> str | None:
        """Why this candidate cannot work, for the config check."""
        if self.is_template:
            if self.text.count("{") != self.text.count("}") or not self.attributes:
                return f"template {self.text!r} has unbalanced or empty braces"
            bad = [a for a in self.attributes if not ATTRIBUTE_NAME.match(a)]
            return f"template {self.text!r} names invalid attributes: {', '.join(bad)}" if bad else None
        return None if ATTRIBUTE_NAME.match(self.text) else f"{self.text!r} is not an attribute name or a template"


@dataclass(frozen=True)
class OutputMapping:
    name: str  # EmailAddress, DisplayName or cf_<Field>
    candidates: tuple[Candidate, ...]
    join: str | None = None  # None: the first value of a multi-valued attribute; else all, joined

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(a for c in self.candidates for a in c.attributes)

    def value(self, values: Callable[[str], list[str]]) -> str | None:
        """The output's value from `values(attribute)` (an entry's text values), or None."""
        for candidate in self.candidates:
            found = {name: self._one(values(name)) for name in candidate.attributes}
            if None in found.values():
                continue
            text = _FIELD.sub(lambda m: found[m.group(1)], candidate.text) if candidate.is_template \
                else found[candidate.text]
            if text.strip():
                return text.strip()
        return None

    def _one(self, values: list[str]) -> str | None:
        values = [v for v in values if v.strip()]
        if not values:
            return None
        return self.join.join(values) if self.join is not None else values[0]
