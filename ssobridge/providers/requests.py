"""GetCustomFieldOptions, StartTicket and StartChat: the directory's groups applied through the policy.

Who is asking comes from loginUsername (web portal) or emailFrom (email); their groups from the
directory. The policy (ssobridge/policy.py) then decides. Every rule considered can be recorded in an
Explanation, which `ssobridge explain` prints.
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass

from .. import audit
from ..directory import Directory, DirectorySet, DirectoryUnavailable, Outcome, UserEntry
from ..directory.groups import Group
from ..policy import (Explanation, FieldRule, InactiveAccounts, OnDirectoryUnavailable, Person, Policy, RequestRule,
                      UnknownUsers, page)
from .base import CustomFieldChange, ProviderResult, Variables

log = logging.getLogger("ssobridge.requests")

TICKET_OK = "Ticket Creation Successful"
CHAT_OK = "Chat Creation Successful"


class Lookup(enum.Enum):
    """What looking for the person behind a request came to."""

    FOUND = "found"  # in a directory, active (or inactive_accounts = "as_member"): their groups count
    NOT_FOUND = "not found"  # nobody given, nobody found, an ambiguous user, or an inactive account
    OUTAGE = "outage"  # a directory could not answer: [policy] on_directory_unavailable decides


@dataclass(frozen=True)
class Requester:
    """The person behind a request, with what the rules need to know about them."""

    typed: str  # the loginUsername or emailFrom as given
    lookup: Lookup = Lookup.NOT_FOUND
    directory: Directory | None = None  # FOUND only
    entry: UserEntry | None = None  # FOUND only
    groups: frozenset[Group] = frozenset()  # FOUND only
    outage_allows: bool = False  # OUTAGE only: on_directory_unavailable = "allow"
    why: str = ""  # NOT_FOUND: why (nobody, ambiguous, inactive); OUTAGE: the error

    @property
    def person(self) -> Person:
        return Person(known=self.lookup is Lookup.FOUND,
                      is_member=lambda name: any(group.is_named(name) for group in self.groups),
                      label=self.entry.dn if self.entry else f"{self.typed} (not in the directory: {self.why})")

    def describe(self) -> str:
        """One line for `ssobridge explain` and the explanation."""
        if self.lookup is Lookup.OUTAGE:
            return f"{self.typed}: directory unavailable ({self.why})"
        groups = sorted(group.name for group in self.groups)
        return f"{self.person.label}; groups: {', '.join(groups) or 'none'}"


class RequestProvider:
    def __init__(self, directories: DirectorySet, policy: Policy):
        self.directories = directories
        self.policy = policy

    def identify(self, username: str | None, email: str | None, operation: str = "explain") -> Requester:
        """Who is asking: found by DirectorySet.find (username, else email), with their groups; not found; or
        an outage. Never raises for a directory's answer: every caller gets one of the three."""
        typed = username or email or ""
        if not typed:
            return Requester(typed, why="anonymous")
        found = self.directories.find(username=username, email=email)
        if found.outcome is Outcome.AMBIGUOUS:
            # The one rule for an ambiguous user (see ssobridge.directory.directory): not in the directory.
            log.error("event=ambiguous_user operation=%s user=%r error=%r", operation, typed, found.error)
            return Requester(typed, why=f"ambiguous ({found.error})")
        if found.outcome is Outcome.UNAVAILABLE:
            return self._outage(operation, typed, found.error)
        try:
            if found.outcome is Outcome.NOT_FOUND:
                return Requester(typed, why="nobody by that name")
            directory, entry = found.directory, found.entry
            if self.policy.inactive_accounts is InactiveAccounts.AS_UNKNOWN:
                state = directory.account_state(entry)
                if state.inactive:
                    log.info("event=inactive_account operation=%s user=%r dn=%r state=%s: treated as not in the "
                             "directory (inactive_accounts = as_unknown)", operation, typed, entry.dn, state.name)
                    return Requester(typed, why=f"{entry.dn} is {state.words}, inactive_accounts = as_unknown")
            return Requester(typed, Lookup.FOUND, directory, entry, directory.groups(entry))
        except DirectoryUnavailable as e:  # found, but their groups could not be read
            return self._outage(operation, typed, str(e))

    def _outage(self, operation: str, typed: str, error: str) -> Requester:
        log.error("event=directory_unavailable operation=%s user=%r error=%r policy=%s", operation, typed,
                  error, self.policy.on_directory_unavailable)
        allows = self.policy.on_directory_unavailable is OnDirectoryUnavailable.ALLOW
        return Requester(typed, Lookup.OUTAGE, outage_allows=allows, why=error)

    def custom_field_options(self, variables: Variables, explanation: Explanation | None = None) -> ProviderResult:
        explanation, started = explanation or Explanation(), time.monotonic()
        department = variables.get("departmentName") or ""
        location = page(variables.get("location"))
        requester = self._requester(variables, "GetCustomFieldOptions", explanation)
        if requester.lookup is Lookup.OUTAGE or self._refused_as_unknown(requester):
            allowed = requester.lookup is Lookup.OUTAGE and requester.outage_allows
            message = self.policy.unavailable_message if requester.lookup is Lookup.OUTAGE else \
                self.policy.unknown_message
            return _decided("GetCustomFieldOptions", requester, started, requester.lookup.value, ProviderResult(
                True, message, (("CanStartTickets", _csharp(allowed)), ("CanStartChats", _csharp(allowed)))))
        rule = self.policy.department(department)
        person = requester.person
        tickets, chats = rule.tickets.permits(person), rule.chats.permits(person)
        explanation.note(f"department {rule.name!r}", True, f"tickets: {rule.tickets.describe()} -> {tickets}; "
                                                             f"chats: {rule.chats.describe()} -> {chats}")
        changes = self._field_changes(requester, department, location, variables.custom_fields(), explanation)
        message = "Result okay" if tickets and chats else rule.message
        return _decided("GetCustomFieldOptions", requester, started, f"department {rule.name}", ProviderResult(
            True, message, (("CanStartTickets", _csharp(tickets)), ("CanStartChats", _csharp(chats))), tuple(changes)))

    def start_ticket(self, variables: Variables, explanation: Explanation | None = None) -> ProviderResult:
        return self._start(variables, "StartTicket", "TicketCreation", TICKET_OK, self.policy.ticket_rules,
                           lambda rule: rule.tickets, explanation or Explanation())

    def start_chat(self, variables: Variables, explanation: Explanation | None = None) -> ProviderResult:
        return self._start(variables, "StartChat", "ChatCreation", CHAT_OK, self.policy.chat_rules,
                           lambda rule: rule.chats, explanation or Explanation())

    def _start(self, variables: Variables, operation: str, output: str, ok_message: str,
               rules: tuple[RequestRule, ...], access, explanation: Explanation) -> ProviderResult:
        department, started = variables.get("departmentName") or "", time.monotonic()
        requester = self._requester(variables, operation, explanation)
        if requester.lookup is Lookup.OUTAGE:
            return _decided(operation, requester, started, requester.lookup.value, ProviderResult(
                True, self.policy.unavailable_message, ((output, "TRUE" if requester.outage_allows else "FALSE"),)))
        if self._refused_as_unknown(requester):
            return _decided(operation, requester, started, requester.lookup.value,
                            ProviderResult(True, self.policy.unknown_message, ((output, "FALSE"),)))
        person = requester.person
        department_rule = self.policy.department(department)
        if not access(department_rule).permits(person):
            explanation.note(f"department {department_rule.name!r}", True,
                             f"{access(department_rule).describe()}: refused")
            log.info("event=decision operation=%s user=%r department=%r rule=%r outcome=refused", operation,
                     requester.typed, department, f"department {department_rule.name}")
            return _decided(operation, requester, started, f"department {department_rule.name}",
                            ProviderResult(True, department_rule.message, ((output, "FALSE"),)))
        explanation.note(f"department {department_rule.name!r}", False, f"{access(department_rule).describe()}: "
                                                                         "permitted")
        subject = variables.get("subject") or ""
        custom_fields = variables.custom_fields()
        for rule in rules:
            why_not = rule.when.check(person, department, subject, custom_fields)
            explanation.note(rule.label, why_not is None, why_not or "matches")
            if why_not is None:
                result = self._apply(rule, requester, output, ok_message)
                log.info("event=decision operation=%s user=%r department=%r rule=%s outputs=%s", operation,
                         requester.typed, department, rule.label, ",".join(f"{k}={v}" for k, v in result.outputs))
                return _decided(operation, requester, started, rule.label, result)
        log.info("event=decision operation=%s user=%r department=%r rule=none outcome=allowed", operation,
                 requester.typed, department)
        return _decided(operation, requester, started, "no rule", ProviderResult(True, ok_message, ((output, "TRUE"),)))

    def _apply(self, rule: RequestRule, requester: Requester, output: str, ok_message: str) -> ProviderResult:
        if rule.refuse:
            return ProviderResult(True, rule.message or self.policy.refused_message, ((output, "FALSE"),))
        outputs = [(output, "TRUE")]
        if rule.department:
            outputs.append(("departmentName", rule.department))
        if rule.group:
            outputs.append(("groupName", rule.group))
        for mapping in rule.set_fields:
            value = mapping.value(requester.entry.texts) if requester.entry else None
            if value is not None:
                outputs.append((mapping.name, value))
        return ProviderResult(True, rule.message or ok_message, tuple(outputs))

    def _requester(self, variables: Variables, operation: str, explanation: Explanation) -> Requester:
        requester = self.identify(variables.get("loginUsername"), variables.get("emailFrom"), operation)
        if requester.lookup is Lookup.OUTAGE:
            explanation.note("directory", False, f"unavailable ({requester.why}): on_directory_unavailable = "
                                                 f"{self.policy.on_directory_unavailable}")
            return requester
        explanation.note("requester", requester.lookup is Lookup.FOUND, requester.describe())
        log.info("event=request operation=%s user=%r known=%s groups=%d", operation, requester.typed,
                 requester.lookup is Lookup.FOUND, len(requester.groups))
        return requester

    def _refused_as_unknown(self, requester: Requester) -> bool:
        """unknown_users = "refuse": nobody outside the directory may start anything."""
        return requester.lookup is Lookup.NOT_FOUND and self.policy.unknown_users is UnknownUsers.REFUSE

    def _field_changes(self, requester: Requester, department: str, location: str, custom_fields: dict,
                       explanation: Explanation) -> list[CustomFieldChange]:
        """For each field, the first rule that applies (in the order of the config file)."""
        changes: dict[str, CustomFieldChange] = {}
        person = requester.person
        for rule in self.policy.fields:
            if rule.field.lower() in changes:
                continue
            why_not = rule.when.check(person, department, custom_fields=custom_fields, location=location)
            explanation.note(rule.label, why_not is None, why_not or f"field {rule.field!r}")
            if why_not is None:
                options = self._options(rule, requester) if rule.changes_options else None
                required = rule.required
                if options == () and required is not False:
                    # Never a required dropdown with nothing to pick (required here or in SmarterTrack).
                    log.info("event=empty_options field=%r user=%r department=%r rule=%s: sent as not required",
                             rule.field, requester.typed, department, rule.label)
                    explanation.note(rule.label, True, f"field {rule.field!r}: no options for this user, so "
                                                       "sent as not required")
                    required = False
                changes[rule.field.lower()] = CustomFieldChange(name=rule.field, first_step=bool(rule.first_step),
                                                                list_options=options, required=required,
                                                                visible=rule.visible)
        return list(changes.values())

    def _options(self, rule: FieldRule, requester: Requester) -> tuple[str, ...]:
        if rule.options is not None:
            return rule.options
        if rule.options_from_attribute:
            values = requester.entry.texts(rule.options_from_attribute) if requester.entry else []
            return tuple(dict.fromkeys(v for v in values if v.strip()))
        options = []
        for group in sorted(requester.groups, key=lambda g: g.name.lower()):
            match = rule.options_from_groups.search(group.name)
            if match:
                options.append(match.group(1) if match.groups() else group.name)
        return tuple(dict.fromkeys(options))


def _decided(operation: str, requester: Requester, started: float, reason: str,
             result: ProviderResult) -> ProviderResult:
    """The audit line of a policy decision: allowed when every output that permits something says so."""
    permits = [value.lower() == "true" for name, value in result.outputs
               if name in ("CanStartTickets", "CanStartChats", "TicketCreation", "ChatCreation")]
    audit.decision(operation, requester.typed, "allowed" if all(permits) else "refused", reason,
                   requester.directory, requester.entry, started,
                   outputs=[f"{name}={value}" for name, value in result.outputs])
    return result


def _csharp(value: bool) -> str:
    """Booleans as the vendor's C# sample writes them into CanStartTickets/CanStartChats."""
    return "True" if value else "False"

