"""What every provider shares: the inputs SmarterTrack sends and the result it expects back."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CustomFieldChange:
    """One ExternalCustomFieldData: what SmarterTrack should change about a custom field."""

    name: str
    first_step: bool = False  # DisplayWithInformationLookup
    list_options: tuple[str, ...] | None = None  # None: leave the options as they are
    required: bool | None = None  # None: leave as it is
    visible: bool | None = None


@dataclass(frozen=True)
class ProviderResult:
    """Success=false means the call itself was refused; a decision about a user is Success=true."""

    success: bool
    message: str | None = None
    outputs: tuple[tuple[str, str], ...] = ()
    fields: tuple[CustomFieldChange, ...] = ()  # GetCustomFieldOptions
    html: str | None = None  # GetUserDetails: UserInfoHtml


def refused(message: str) -> ProviderResult:
    return ProviderResult(success=False, message=message)


@dataclass(frozen=True)
class Variables:
    """The name=value InputVariables, looked up case-insensitively (the vendor spells names both ways)."""

    values: dict[str, str] = field(default_factory=dict)  # lower-case name -> value
    names: dict[str, str] = field(default_factory=dict)  # lower-case name -> name as sent
    repeated: tuple[str, ...] = ()  # names sent more than once

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, str]]) -> "Variables":
        values: dict[str, str] = {}
        names: dict[str, str] = {}
        repeated: list[str] = []
        for name, value in pairs:
            key = name.lower()
            if key in values and name not in repeated:
                repeated.append(name)
            values[key] = value
            names.setdefault(key, name)
        return cls(values, names, tuple(repeated))

    def get(self, name: str) -> str | None:
        return self.values.get(name.lower())

    def custom_fields(self) -> dict[str, str]:
        """cf_<Field> inputs by field name, as SmarterTrack spelt them."""
        return {self.names[k][3:]: v for k, v in self.values.items() if k.startswith("cf_")}
