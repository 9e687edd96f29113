"""GetUserDetails: the customer's directory profile as a card on every ticket view.

Called on EVERY ticket view, so it answers from the card store (cards/store.py: one for every worker
process of the host, kept across restarts) and keeps a latency budget: when the directory is slow or down,
the answer comes within the budget, with the last card known (marked as such) or a short notice, while the
lookup goes on in the background and fills the store for next time. An unknown customer gets Success=true
and no card, as the vendor documents.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import json
import logging
import queue
import threading
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2

from .. import metrics
from ..cards import CardStore
from ..config import UserInfoSettings
from ..directory import Directory, DirectorySet, DirectoryUnavailable, Outcome, UserEntry
from .base import ProviderResult, Variables

log = logging.getLogger("ssobridge.userinfo")

FOUND = "User Account Information Retrieved Successfully"
NOT_FOUND = "No directory entry for this customer"
LOOKUP_WORKERS = 8  # card lookups at once; more wait in a queue of LOOKUP_BACKLOG
LOOKUP_BACKLOG = 32  # beyond that, a view gets the stale card or the notice at once

# Card line -> (label, candidate attributes). AD names first, then OpenLDAP's.
ATTRIBUTE_FIELDS = {
    "display_name": ("Name", ("displayName", "cn")),
    "title": ("Title", ("title",)),
    "department": ("Department", ("department", "departmentNumber", "ou")),
    "company": ("Company", ("company", "o")),
    "email": ("Email", ("mail",)),
    "phone": ("Phone", ("telephoneNumber",)),
    "mobile": ("Mobile", ("mobile",)),
    "office": ("Office", ("physicalDeliveryOfficeName", "roomNumber", "l")),
}
CARD_ATTRIBUTES = tuple({a for _, names in ATTRIBUTE_FIELDS.values() for a in names}) + (
    "manager", "thumbnailPhoto", "jpegPhoto", "msDS-UserPasswordExpiryTimeComputed", "lastLogonTimestamp",
    "authTimestamp")


@dataclass(frozen=True)
class Card:
    fields: tuple[tuple[str, str], ...]
    groups: tuple[str, ...]
    photo: str | None
    state: str
    notice: str | None = None

    def to_json(self) -> str:
        return json.dumps({"fields": self.fields, "groups": self.groups, "photo": self.photo, "state": self.state})

    @classmethod
    def from_json(cls, text: str, notice: str | None = None) -> Card:
        data = json.loads(text)
        return cls(tuple((label, value) for label, value in data["fields"]), tuple(data["groups"]), data["photo"],
                   data["state"], notice)


class LookupPool:
    """A few daemon threads that run card lookups from a bounded queue. Not concurrent.futures: its threads
    are joined at exit, and a lookup stuck on a dead directory must not hold up shutdown."""

    def __init__(self, workers: int, backlog: int):
        self._queue: queue.Queue = queue.Queue(maxsize=backlog)
        self._workers = workers
        self._started = False
        self._lock = threading.Lock()

    def submit(self, future: Future, function, *args) -> bool:
        """Run function(*args) into `future`; False, at once, when the queue is full."""
        with self._lock:
            if not self._started:
                for number in range(self._workers):
                    threading.Thread(target=self._work, name=f"ssobridge-card-{number}", daemon=True).start()
                self._started = True
        try:
            self._queue.put_nowait((future, function, args))
        except queue.Full:
            return False
        return True

    def _work(self) -> None:
        while True:
            future, function, args = self._queue.get()
            try:
                future.set_result(function(*args))
            except BaseException as e:  # handed to whoever waits; logged there
                future.set_exception(e)


@functools.cache
def _process_lookups() -> LookupPool:
    """One pool per process, shared by every provider built in it: a reload builds a new provider, and the
    threads of a pool of its own would never end (they wait on its queue)."""
    return LookupPool(LOOKUP_WORKERS, LOOKUP_BACKLOG)


class UserInfoProvider:
    def __init__(self, directories: DirectorySet, settings: UserInfoSettings, cards: CardStore | None = None,
                 lookups: LookupPool | None = None):
        """cards: the host's card store (app.card_store); None: one in memory, for this provider only."""
        self.directories = directories
        self.settings = settings
        loader = jinja2.FileSystemLoader(str(_template_folder(settings.template)))
        self.template = jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined) \
            .get_template(_template_name(settings.template))
        self.zone = ZoneInfo(settings.time_zone)
        self.cards = cards or CardStore(None, settings.cache_size, settings.stale_seconds)
        self.form = card_form(settings, self.template.filename)
        self._in_flight: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._lookups = lookups or _process_lookups()

    def user_details(self, variables: Variables) -> ProviderResult:
        username = (variables.get("username") or "").strip()
        email = (variables.get("email") or "").strip()
        if not username and not email:
            return ProviderResult(True, NOT_FOUND)
        key = f"{username.lower()}|{email.lower()}"
        stored = self.cards.get(key)
        # A card made with other settings (a template or fields changed since) is looked up again.
        fresh = stored is not None and stored.form == self.form and stored.age < self.settings.cache_seconds
        metrics.cache("user_card", fresh)
        if fresh:
            return self._answer(stored.html)
        future, reason = self._lookup(key, username, email), "too many lookups waiting"
        if future is not None:
            try:
                return self._answer(future.result(timeout=self.settings.latency_budget_ms / 1000))
            except FutureTimeout:
                reason = "latency budget exceeded"
            except DirectoryUnavailable as e:
                reason = str(e)
        log.warning("event=user_details_degraded user=%r email=%r reason=%r", username, email, reason)
        if stored is not None:  # younger than stale_seconds: the store keeps no older card
            if stored.card is None:
                return self._answer("")
            shown_as_of = self._format(datetime.fromtimestamp(stored.written, self.zone))
            stale = Card.from_json(stored.card, notice=f"{self.settings.unavailable_notice} Shown as of {shown_as_of}.")
            return self._answer(self.template.render(card=stale))
        notice = Card((), (), None, "unknown", notice=self.settings.unavailable_notice)
        return self._answer(self.template.render(card=notice))

    def _answer(self, html: str) -> ProviderResult:
        return ProviderResult(True, FOUND if html else NOT_FOUND, html=html)

    def _lookup(self, key: str, username: str, email: str) -> Future | None:
        """One lookup per customer at a time in this process; its card is stored even if the caller stopped
        waiting. None: the lookup queue is full."""
        with self._lock:
            future = self._in_flight.get(key)
            if future is None:
                future = Future()
                future.add_done_callback(lambda done: self._done(key))
                if not self._lookups.submit(future, self._render, key, username, email):
                    return None
                self._in_flight[key] = future
        return future

    def _done(self, key: str) -> None:
        with self._lock:
            self._in_flight.pop(key, None)

    def _render(self, key: str, username: str, email: str) -> str:
        """The card's HTML, stored before it is answered: a card shown once is there for every worker."""
        directory, entry = self._find(username, email)
        if entry is None:
            self.cards.put(key, self.form, "", None)
            return ""
        card = self.card(directory, entry)
        html = self.template.render(card=card)
        self.cards.put(key, self.form, html, card.to_json())
        return html

    def _find(self, username: str, email: str) -> tuple[Directory | None, UserEntry | None]:
        """(None, None) for nobody; DirectoryUnavailable, as the card's own questions raise it, for an outage."""
        found = self.directories.find(username=username or None, email=email or None)
        if found.outcome is Outcome.UNAVAILABLE:
            raise DirectoryUnavailable(found.error)  # user_details degrades: the stored card, or the notice
        if found.outcome is Outcome.AMBIGUOUS:
            # The one rule for an ambiguous user (see ssobridge.directory.directory): not in the directory.
            log.error("event=ambiguous_user user=%r email=%r error=%r", username, email, found.error)
        return found.directory, found.entry

    def card(self, directory: Directory, entry: UserEntry) -> Card:
        fields = []
        state = directory.account_state(entry).words
        for name in self.settings.fields:
            if name in ATTRIBUTE_FIELDS:
                label, candidates = ATTRIBUTE_FIELDS[name]
                value = next((v for v in map(entry.first_text, candidates) if v), None)
            elif name == "manager":
                label, manager = "Manager", entry.first_text("manager")
                value = directory.display_name_of(manager) if manager else None
            elif name == "account_state":
                label, value = "Account", state
            elif name == "password_expires":
                label, value = "Password expires", self._format(directory.password_expires(entry))
            elif name == "last_logon":
                label, value = "Last logon", self._format(directory.last_logon(entry))
            else:
                continue
            if value:
                fields.append((label, value))
        groups = ()
        if "groups" in self.settings.fields:
            groups = tuple(sorted((g.display_name for g in directory.groups(entry)
                                   if g.names and self.settings.groups_pattern.search(g.display_name)),
                                  key=str.lower))
        photo = self._photo(entry) if "photo" in self.settings.fields else None
        return Card(tuple(fields), groups, photo, state)

    def _photo(self, entry: UserEntry) -> str | None:
        for name in ("thumbnailphoto", "jpegphoto"):
            for raw in entry.attributes.get(name, ()):
                kind = "image/jpeg" if raw.startswith(b"\xff\xd8") else "image/png" \
                    if raw.startswith(b"\x89PNG") else None
                if kind and len(raw) <= self.settings.photo_max_bytes:
                    return f"data:{kind};base64,{base64.b64encode(raw).decode('ascii')}"
        return None

    def _format(self, moment: datetime | None) -> str | None:
        return moment.astimezone(self.zone).strftime(self.settings.date_format) if moment else None


def card_form(settings: UserInfoSettings, template_file: str | None) -> str:
    """What a stored card's HTML was made with: the settings that shape it and the template's text."""
    template = Path(template_file).read_text(encoding="utf-8") if template_file else ""
    shape = [settings.fields, settings.groups_pattern.pattern, settings.groups_pattern.flags, settings.date_format,
             settings.time_zone, settings.photo_max_bytes, template]
    return hashlib.sha256(json.dumps(shape).encode("utf-8")).hexdigest()[:16]


def _template_folder(path: str | None) -> Path:
    return Path(path).parent if path else Path(__file__).resolve().parent.parent / "templates"


def _template_name(path: str | None) -> str:
    return Path(path).name if path else "user_card.html.j2"
