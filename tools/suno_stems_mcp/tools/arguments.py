"""Tool arguments held to the advertised inputSchema, with every problem said in words a model can act on.

The SDK validates arguments in pydantic's lax mode: `true` would become track 1 of a paid split and "30" a number
of seconds. Checked against the published schema first, a garbled call is refused before anything is sent.
Arrays sent as JSON text are decoded first, as the SDK does, because Claude Desktop sends them that way.
"""

from __future__ import annotations

import json
from typing import Any

from pydantic import ValidationError


class ArgumentCheck:
    def __init__(self, schemas: dict[str, dict[str, Any]]) -> None:
        self._schemas = schemas
        self._validators: dict[str, Any] = {}

    def decoded(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        schema = self._schemas.get(name)
        return _decode_json_text(arguments, schema) if schema is not None else arguments

    def problems(self, name: str, arguments: dict[str, Any]) -> list[str]:
        schema = self._schemas.get(name)
        if schema is None:
            return []
        known = list(schema.get("properties", {}))
        unknown = sorted(set(arguments) - set(known))
        if unknown:
            return [f"there is no argument {', '.join(map(repr, unknown))} (the arguments are: {', '.join(known)})"]
        validator = self._validators.get(name)
        if validator is None:
            from jsonschema import Draft202012Validator, FormatChecker  # on first use, not at startup

            validator = Draft202012Validator(schema, format_checker=FormatChecker(["uuid"]))
            self._validators[name] = validator
        found: dict[str, str] = {}
        errors = sorted(validator.iter_errors(arguments), key=lambda e: (list(e.absolute_path), e.validator != "type"))
        for error in errors:
            found.setdefault(".".join(map(str, error.absolute_path)) or repr(error.message), _describe(error))
        return list(found.values())


def _decode_json_text(arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    decoded = dict(arguments)
    for key, value in arguments.items():
        types = schema.get("properties", {}).get(key, {}).get("type")
        if isinstance(value, str) and "string" not in (types if isinstance(types, list) else [types]):
            try:
                parsed = json.loads(value)
            except (ValueError, RecursionError):
                continue
            if isinstance(parsed, (list, dict)):
                decoded[key] = parsed
    return decoded


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error.absolute_path) or "arguments"
    shown = repr(error.instance) if not isinstance(error.instance, str) else repr(error.instance[:60])
    if error.validator == "type":
        expected = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        words = " or ".join("null" if t == "null" else f"{'an' if t[0] in 'aeiou' else 'a'} {t}" for t in expected)
        return f"{where}: must be {words} (got {shown})"
    if error.validator == "maximum" and where == "wait_seconds":
        return (f"wait_seconds: at most {error.validator_value}, this server's SUNO_STEMS_MAX_WAIT (got {shown}); "
                "wait that long, then call get_job to keep waiting")
    if error.validator in ("maximum", "minimum"):
        word = "most" if error.validator == "maximum" else "least"
        return f"{where}: must be at {word} {error.validator_value} (got {shown})"
    if error.validator == "enum":
        allowed = ", ".join("null" if v is None else json.dumps(v) for v in error.validator_value)
        return f"{where}: must be one of {allowed} (got {shown})"
    if error.validator == "required":
        return f"{error.message.split(chr(39))[1]}: required"
    if error.validator == "format" and error.validator_value == "uuid":
        return f"{where}: must be an apiframe job id, a uuid like 3f2b8c1e-9d4a-4e8b-a1c2-5d6e7f8a9b0c (got {shown})"
    return f"{where}: {error.message}"


def explain(tool: str, error: ValidationError) -> str:
    problems = []
    for issue in error.errors(include_url=False):
        where = ".".join(str(part) for part in issue["loc"]) or "arguments"
        given = issue.get("input")
        shown = repr(given) if isinstance(given, (int, float, bool)) or given is None else repr(str(given)[:60])
        if issue["type"] == "missing":
            problems.append(f"{where}: required")
        elif issue["type"] == "value_error":
            problems.append(f"{where}: {issue['msg'].removeprefix('Value error, ')} (got {shown})")
        else:
            problems.append(f"{where}: {issue['msg']} (got {shown})")
    return f"Invalid arguments for {tool}: " + "; ".join(problems) + ". Fix them and call again; nothing was sent."
