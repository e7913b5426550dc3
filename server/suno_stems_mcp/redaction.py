"""Secrets out of every text: the API key, also when apiframe echoes only part of it or in another case."""

from __future__ import annotations

import re
from collections.abc import Iterable

PLACEHOLDER = "[redacted]"
PART = 8
"""A run of this many characters of a secret, in any case, marks the word that holds it as the secret."""
_WORD = re.compile(r"[A-Za-z0-9_\-]+")


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        kept = [s for s in secrets if s]
        self._exact = sorted((s for s in kept if len(s) < PART), key=len, reverse=True)
        self._probes = frozenset(s.lower()[i:i + PART] for s in kept if len(s) >= PART
                                 for i in range(len(s) - PART + 1))

    def __bool__(self) -> bool:
        return bool(self._exact or self._probes)

    def scrub(self, text: str) -> str:
        for secret in self._exact:
            text = text.replace(secret, PLACEHOLDER)
        if not self._probes:
            return text
        lowered = text.lower()
        if not any(probe in lowered for probe in self._probes):
            return text
        return _WORD.sub(lambda word: PLACEHOLDER if self._holds_secret(word.group(0)) else word.group(0), text)

    def _holds_secret(self, word: str) -> bool:
        lowered = word.lower()
        return len(word) >= PART and any(probe in lowered for probe in self._probes)
