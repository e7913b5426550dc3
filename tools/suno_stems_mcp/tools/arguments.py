"""Every check of a call's arguments, in one place, and one message that lists every problem at once.

Arguments are held to the published inputSchema before the SDK's lenient conversion (pydantic's lax mode
would make `true` track 1 of a paid split, and "30" a number of seconds), then to the rules a schema cannot
say (exactly one of index and track_id; a webhook URL that apiframe can reach). Before that, an explicit
null for an optional argument is dropped (strict-mode clients send them for "not given"), and arrays sent
as JSON text are decoded, as Claude Desktop sends them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from suno_stems_mcp.config import Settings
from suno_stems_mcp.errors import InvalidArguments
from suno_stems_mcp.net import is_loopback_host

Rule = Callable[[dict[str, Any], Settings], list[str]]


def invalid(tool: str, problems: list[str]) -> InvalidArguments:
    return InvalidArguments(f"Invalid arguments for {tool}: {'; '.join(problems)}. Fix them and call again; "
                            "nothing was sent or charged.")


class ArgumentCheck:
    def __init__(self, schemas: dict[str, dict[str, Any]], settings: Settings) -> None:
        self._schemas = schemas
        self._settings = settings
        self._validators: dict[str, Any] = {}

    def checked(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """The arguments to call `name` with; InvalidArguments listing every problem otherwise."""
        schema = self._schemas.get(name)
        if schema is None:
            return arguments
        prepared = _prepared(arguments, schema)
        problems = self._schema_problems(name, schema, prepared)
        problems += [p for rule in RULES.get(name, ()) for p in rule(prepared, self._settings)]
        if problems:
            raise invalid(name, problems)
        return prepared

    def _schema_problems(self, name: str, schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
        known = list(schema.get("properties", {}))
        found = [f"there is no argument {key!r} (the arguments are: {', '.join(known)})"
                 for key in sorted(set(arguments) - set(known))]
        validator = self._validators.get(name)
        if validator is None:
            from jsonschema import Draft202012Validator, FormatChecker  # on first use, not at startup

            without_extras = {k: v for k, v in schema.items() if k != "additionalProperties"}
            validator = Draft202012Validator(without_extras, format_checker=FormatChecker(["uuid"]))
            self._validators[name] = validator
        described: dict[str, str] = {}
        errors = sorted(validator.iter_errors(arguments), key=lambda e: (list(e.absolute_path), e.validator != "type"))
        for error in errors:
            described.setdefault(".".join(map(str, error.absolute_path)) or error.message, _describe(error))
        return found + list(described.values())


def _prepared(arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    required = set(schema.get("required", ()))
    properties = schema.get("properties", {})
    prepared: dict[str, Any] = {}
    for key, value in arguments.items():
        if value is None and key not in required:
            continue
        kind = properties.get(key, {}).get("type")
        if isinstance(value, str) and kind in ("array", "object"):
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                parsed = value
            value = parsed if isinstance(parsed, (list, dict)) else value
        prepared[key] = value
    return prepared


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.absolute_path) or "arguments"
    shown = repr(error.instance) if not isinstance(error.instance, str) else repr(error.instance[:60])
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        words = " or ".join(f"{'an' if t[0] in 'aeiou' else 'a'} {t}" for t in expected)
        return f"{where}: must be {words} (got {shown})"
    if error.validator in ("maximum", "minimum"):
        word = "most" if error.validator == "maximum" else "least"
        return f"{where}: must be at {word} {error.validator_value} (got {shown})"
    if error.validator == "enum":
        allowed = ", ".join(json.dumps(v) for v in error.validator_value)
        return f"{where}: must be one of {allowed} (got {shown})"
    if error.validator == "required":
        return f"{error.message.split(chr(39))[1]}: required"
    if error.validator == "format" and error.validator_value == "uuid":
        return f"{where}: must be an apiframe job id, a uuid like 3f2b8c1e-9d4a-4e8b-a1c2-5d6e7f8a9b0c (got {shown})"
    return f"{where}: {error.message}"


def _one_track(arguments: dict[str, Any], settings: Settings) -> list[str]:
    if ("index" in arguments) == ("track_id" in arguments):
        return ["give exactly one of index (1 or 2) or track_id to say which track of the song to split (call "
                "list_tracks with the song's job_id to see its tracks)"]
    return []


def _webhook(arguments: dict[str, Any], settings: Settings) -> list[str]:
    url = arguments.get("webhook_url")
    if url is not None and not isinstance(url, str):
        return []
    if url is None:
        return ["webhook_events needs a webhook_url: give both, or neither"] if "webhook_events" in arguments else []
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return [f"webhook_url: not a URL ({url[:100]!r})"]
    local = parts.scheme == "http" and settings.sandbox and is_loopback_host(host)
    if (parts.scheme != "https" and not local) or not host:
        return [f"webhook_url: must be an https:// URL with a host name, not {url[:100]!r} (or leave it out: "
                "split_stems works without a webhook)"]
    return []


RULES: dict[str, tuple[Rule, ...]] = {"split_stems": (_one_track, _webhook)}
