"""Request-body validation as apiframe does it: every problem listed, keyed by JSON path (a 400's `details`)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from ..net import is_loopback_host

Details = dict[str, list[str]]
Check = Callable[[Any], "str | None"]

WEBHOOK_EVENTS = ("progress", "completed", "failed")
SUNO_ACTIONS = ("extend", "cover", "add_vocals", "stems")
MODEL_VERSIONS = ("V4", "V4_5", "V4_5ALL", "V4_5PLUS", "V5", "V5_5")


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def string(min_length: int = 0, max_length: int | None = None) -> Check:
    def check(value: Any) -> str | None:
        if not isinstance(value, str):
            return f"Expected string, received {_kind(value)}"
        if len(value) < min_length:
            return f"String must contain at least {min_length} character(s)"
        if max_length is not None and len(value) > max_length:
            return f"String must contain at most {max_length} character(s)"
        return None

    return check


def number(minimum: float | None = None, maximum: float | None = None, exclusive_minimum: bool = False) -> Check:
    def check(value: Any) -> str | None:
        if _kind(value) != "number":
            return f"Expected number, received {_kind(value)}"
        if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
            return f"Number must be greater than {'' if exclusive_minimum else 'or equal to '}{minimum}"
        if maximum is not None and value > maximum:
            return f"Number must be less than or equal to {maximum}"
        return None

    return check


def boolean(value: Any) -> str | None:
    return None if isinstance(value, bool) else f"Expected boolean, received {_kind(value)}"


def one_of(*allowed: Any) -> Check:
    def check(value: Any) -> str | None:
        if any(value == option and _kind(value) == _kind(option) for option in allowed):
            return None
        expected = " | ".join(repr(option) for option in allowed)
        return f"Invalid enum value. Expected {expected}, received {value!r}"

    return check


def track_index(value: Any) -> str | None:
    if _kind(value) != "number":
        return f"Expected number, received {_kind(value)}"
    return None if value in (1, 2) else f"Invalid literal value, expected 1 or 2, received {value!r}"


def uuid_string(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"Expected string, received {_kind(value)}"
    return None if is_uuid(value) else "Invalid uuid"


def is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower() and len(value) == 36
    except ValueError:
        return False


def webhook_url(value: Any) -> str | None:
    if not isinstance(value, str):
        return f"Expected string, received {_kind(value)}"
    try:
        parts = urlsplit(value)
    except ValueError:
        return "Invalid url"
    if not parts.netloc or parts.scheme not in ("https", "http"):
        return "Invalid url"
    if parts.scheme == "http" and not is_loopback_host(parts.hostname):
        return "Webhook URL must use https"
    return None


Fields = dict[str, Check]


def validate_object(
    body: Any,
    fields: Fields,
    required: tuple[str, ...],
    nested: dict[str, tuple[Fields, tuple[str, ...]]] | None = None,
    prefix: str = "",
) -> Details:
    """Unknown keys, missing keys and bad values, each under its own JSON path."""
    details: Details = {}
    if not isinstance(body, dict):
        details[prefix] = [f"Expected object, received {_kind(body)}"]
        return details
    for key in body:
        if key not in fields and key not in (nested or {}):
            details.setdefault(_join(prefix, key), []).append(f"Unrecognized key: {key!r}")
    for key in required:
        if key not in body:
            details.setdefault(_join(prefix, key), []).append("Required")
    for key, check in fields.items():
        if key in body:
            problem = check(body[key])
            if problem:
                details.setdefault(_join(prefix, key), []).append(problem)
    for key, (sub_fields, sub_required) in (nested or {}).items():
        if key in body:
            details.update(validate_object(body[key], sub_fields, sub_required, prefix=_join(prefix, key)))
    return details


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def webhook_events_details(body: dict[str, Any]) -> Details:
    events = body.get("webhookEvents")
    if events is None and "webhookEvents" not in body:
        return {}
    if not isinstance(events, list):
        return {"webhookEvents": [f"Expected array, received {_kind(events)}"]}
    details: Details = {}
    if not events:
        details["webhookEvents"] = ["Array must contain at least 1 element(s)"]
    for i, event in enumerate(events):
        problem = one_of(*WEBHOOK_EVENTS)(event)
        if problem:
            details.setdefault(f"webhookEvents.{i}", []).append(problem)
    return details


_WEBHOOK_FIELDS: Fields = {"webhookUrl": webhook_url, "webhookEvents": lambda _: None}

_ACTION_FIELDS: dict[str, Fields] = {
    "stems": {},
    "extend": {
        "continueAt": number(0, exclusive_minimum=True),
        "prompt": string(0, 5000),
        "title": string(0, 80),
        "style": string(0, 1000),
        "negative_tags": string(0, 500),
    },
    "cover": {
        "audio_weight": number(0, 1),
        "prompt": string(0, 5000),
        "title": string(0, 80),
        "style": string(0, 1000),
        "negative_tags": string(0, 500),
    },
    "add_vocals": {
        "prompt": string(1, 5000),
        "title": string(0, 80),
        "style": string(0, 1000),
        "negative_tags": string(0, 500),
    },
}


def validate_suno_action(body: Any) -> Details:
    """`SunoActionRequest`: discriminated by `action`, no unknown keys, exactly one of index / trackId."""
    if not isinstance(body, dict):
        return {"": [f"Expected object, received {_kind(body)}"]}
    action = body.get("action")
    if action not in SUNO_ACTIONS:
        problem = "Required" if "action" not in body else one_of(*SUNO_ACTIONS)(action)
        return {"action": [problem or "Invalid discriminator value"]}
    fields: Fields = {
        "action": one_of(action),
        "parentJobId": uuid_string,
        "index": track_index,
        "trackId": string(1, 200),
        **_WEBHOOK_FIELDS,
        **_ACTION_FIELDS[action],
    }
    required = ("action", "parentJobId", "prompt") if action == "add_vocals" else ("action", "parentJobId")
    details = validate_object(body, fields, required)
    details.update(webhook_events_details(body))
    if ("index" in body) == ("trackId" in body):
        details.setdefault("", []).append("Provide exactly one of index or trackId")
    return details


_SUNO_PARAMS: Fields = {
    "auto_lyrics": boolean,
    "custom_mode": boolean,
    "instrumental": boolean,
    "model_version": one_of(*MODEL_VERSIONS),
    "negative_tags": string(0, 500),
    "style": string(0, 1000),
    "style_weight": number(0, 1),
    "title": string(0, 80),
    "vocal_gender": one_of("m", "f"),
    "weirdness_constraint": number(0, 1),
}


def validate_generate(body: Any) -> Details:
    """`GenerateMusicRequest`, Suno variant (the only model the sandbox emulates)."""
    if not isinstance(body, dict):
        return {"": [f"Expected object, received {_kind(body)}"]}
    if body.get("model") != "suno":
        if "model" not in body:
            return {"model": ["Required"]}
        return {"model": [f"The sandbox emulates only model 'suno', received {body.get('model')!r}"]}
    fields: Fields = {"model": one_of("suno"), "prompt": string(1, 5000), **_WEBHOOK_FIELDS}
    details = validate_object(body, fields, ("prompt", "model"), nested={"sunoParams": (_SUNO_PARAMS, ())})
    details.update(webhook_events_details(body))
    return details
