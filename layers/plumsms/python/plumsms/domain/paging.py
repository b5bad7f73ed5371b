"""Opaque page cursors: a listing position, bound to the listing's filters and signed.

A cursor is ``<payload>.<tag>``, both base64url without padding. The payload is a small
JSON object holding the store's seek position and a digest of the filters it was issued
for; the tag is an HMAC-SHA256 of the payload (truncated to 128 bits) under a key derived
from the deployment's own random cursor secret (``CURSOR_KEY`` / ``CURSOR_KEY_SECRET``,
never the webhook key). So a client can hand a cursor back but cannot forge one, edit
its position, or reuse it with other filters: each of those is a ``ValidationFailed`` on
``cursor`` (HTTP 400). Rotating the secret invalidates outstanding cursors, which only
means a listing has to start again from its first page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from plumsms.domain.errors import ValidationFailed

FIELD = "cursor"
VERSION = 1
MAX_CURSOR_CHARS = 512
MAX_POSITION_CHARS = 128
_TAG_BYTES = 16
_SCOPE_DIGEST_BYTES = 12
_KEY_PURPOSE = b"plumsms/page-cursor/v1"
_POSITION_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"

Scope = Mapping[str, str | int | None]
"""What a cursor is bound to: the listing's name and filters (never its page size)."""


@dataclass(frozen=True, slots=True, order=True)
class LogPosition:
    """Where a log listing resumes: after the entry at ``at`` (timezone-aware) whose
    tie-break is ``key`` (a message's id; an opt-out's number). The log's listings are
    ordered by that time, then that key, as positions compare; the store turns a position
    into its own seek."""

    at: datetime
    key: str

    def to_text(self) -> str:
        """The position as a cursor carries it: ``<UTC time, fixed width>#<key>``.

        Cursors issued before positions were typed carried this same text, so they stay
        valid.
        """
        return f"{self.at.astimezone(UTC).strftime(_POSITION_TIME)}#{self.key}"

    @classmethod
    def from_text(cls, text: str) -> LogPosition:
        """The position ``to_text`` wrote; ``ValueError`` for any other text."""
        at, sep, key = text.partition("#")
        if not sep or not key:
            raise ValueError("a position is <time>#<key>")
        return cls(datetime.strptime(at, _POSITION_TIME).replace(tzinfo=UTC), key)


def derive_key(secret: str) -> bytes:
    """The cursor signing key, derived from the deployment's cursor secret.

    The secret is random and serves cursors alone (issue 11: one derived from the webhook
    key made every cursor an offline guessing oracle for it); the derivation binds the
    key to this purpose and version.
    """
    if not secret:
        raise ValueError("the cursor key needs a non-empty secret")
    return hmac.new(secret.encode("utf-8"), _KEY_PURPOSE, hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    return base64.urlsafe_b64decode(padded.encode("ascii"))


def _printable_ascii(text: str) -> bool:
    return all(" " <= c <= "~" for c in text)


def _scope_digest(scope: Scope) -> str:
    canonical = json.dumps(dict(scope), sort_keys=True, separators=(",", ":"), default=str)
    return _b64encode(hashlib.sha256(canonical.encode("utf-8")).digest()[:_SCOPE_DIGEST_BYTES])


_NOT_OURS = "is not a cursor this API issued (it may have been altered)"


def _invalid(rule: str = _NOT_OURS) -> ValidationFailed:
    return ValidationFailed(FIELD, rule)


@dataclass(frozen=True, slots=True)
class CursorCodec:
    """Encodes and checks cursors under one signing key."""

    key: bytes

    def _tag(self, payload: bytes) -> bytes:
        return hmac.new(self.key, payload, hashlib.sha256).digest()[:_TAG_BYTES]

    def encode(self, position: str, scope: Scope) -> str:
        """A cursor resuming after ``position`` in the listing described by ``scope``."""
        if not 0 < len(position) <= MAX_POSITION_CHARS or not _printable_ascii(position):
            raise ValueError("a position is 1 to 128 printable ASCII characters")
        body = {"v": VERSION, "p": position, "s": _scope_digest(scope)}
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        return f"{_b64encode(payload)}.{_b64encode(self._tag(payload))}"

    def decode(self, cursor: str, scope: Scope) -> str:
        """The position inside ``cursor``; ``ValidationFailed`` on ``cursor`` otherwise."""
        if not cursor or len(cursor) > MAX_CURSOR_CHARS or not cursor.isascii():
            raise _invalid()
        encoded_payload, dot, encoded_tag = cursor.partition(".")
        if not dot:
            raise _invalid()
        try:
            payload = _b64decode(encoded_payload)
            tag = _b64decode(encoded_tag)
        except (binascii.Error, ValueError) as exc:
            raise _invalid() from exc
        if not hmac.compare_digest(tag, self._tag(payload)):
            raise _invalid()
        try:
            body = json.loads(payload)
        except ValueError as exc:  # signed by us, so only a bug or an old format
            raise _invalid() from exc
        if not isinstance(body, dict) or body.get("v") != VERSION:
            raise _invalid("comes from an incompatible version of this API")
        if body.get("s") != _scope_digest(scope):
            raise _invalid("was issued for different filters or order; start from page one")
        position = body.get("p")
        if not isinstance(position, str) or not 0 < len(position) <= MAX_POSITION_CHARS:
            raise _invalid()
        return position

    def encode_position(self, position: LogPosition, scope: Scope) -> str:
        """A cursor resuming after ``position`` in the listing described by ``scope``."""
        return self.encode(position.to_text(), scope)

    def decode_position(self, cursor: str, scope: Scope) -> LogPosition:
        """The position inside ``cursor``; ``ValidationFailed`` on ``cursor`` otherwise."""
        text = self.decode(cursor, scope)
        try:
            return LogPosition.from_text(text)
        except ValueError as exc:
            raise _invalid() from exc
