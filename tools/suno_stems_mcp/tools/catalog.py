"""The tools as clients see them in `tools/list`: schemas generated for portability and size.

Input schemas travel through converters (OpenAI strict mode, Gemini declarations, LangChain, mcp-use,
smolagents), so each property has one `type`, an optional argument is simply not `required` (no null
branch: an explicit null is read as "not given"), enums hold one type, and unknown arguments are refused.
Output schemas follow the same rule: a result leaves out an empty field rather than sending null.
Neither kind carries pydantic's titles; output schemas, which hosts do not show the model, carry no
descriptions either. Both are generated from the same annotations the SDK reads, with pydantic's public
schema-generator hook, and never patched into the SDK's own tool objects afterwards.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, get_type_hints

from mcp.server.mcpserver import Context
from pydantic import BaseModel, create_model
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaMode, JsonSchemaValue
from pydantic_core import CoreSchema, core_schema


class _Compact(GenerateJsonSchema):
    def field_title_should_be_set(self, schema: Any) -> bool:
        return False

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        generated = super().default_schema(schema)
        if generated.get("default", ...) is None:
            generated.pop("default")
        return generated

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        generated = super().generate(schema, mode)
        generated.pop("title", None)
        for definition in generated.get("$defs", {}).values():
            definition.pop("title", None)
        return generated


class PortableInput(_Compact):
    """`X | None` is published as X: optional means not required, and null means not given, which an optional
    property also says with OpenAPI's `nullable: true`, the one flag some converters (smolagents, Gemini's
    declarations) read to tell optional arguments from required ones."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        generated = {**super().generate(schema, mode), "additionalProperties": False}
        required = set(generated.get("required", ()))
        for name, prop in generated.get("properties", {}).items():
            if name not in required:
                prop["nullable"] = True
        return generated


class CompactOutput(_Compact):
    """A field that may be empty is left out of a result instead of being null (core.results), so here too
    `X | None` is X, and not required; no descriptions."""

    def nullable_schema(self, schema: core_schema.NullableSchema) -> JsonSchemaValue:
        return self.generate_inner(schema["schema"])

    def generate(self, schema: CoreSchema, mode: JsonSchemaMode = "validation") -> JsonSchemaValue:
        generated = super().generate(schema, mode)
        _strip(generated)
        return generated


def _strip(schema: Any) -> None:
    """Output schemas describe what this server itself produces: `additionalProperties: false` and the
    descriptions only cost bytes there."""
    if isinstance(schema, dict):
        if schema.get("additionalProperties") is False:
            del schema["additionalProperties"]
        schema.pop("description", None)
        for key, value in schema.items():
            if key == "properties" and isinstance(value, dict):
                for item in value.values():
                    _strip(item)
            elif key != "enum":
                _strip(value)
    elif isinstance(schema, list):
        for item in schema:
            _strip(item)


def arguments_model(fn: Callable[..., Any]) -> type[BaseModel]:
    """A model of `fn`'s arguments (not its context), from its signature."""
    hints = get_type_hints(fn, include_extras=True)
    fields: dict[str, Any] = {}
    for name, parameter in inspect.signature(fn).parameters.items():
        annotation = hints[name]
        if (isinstance(annotation, type) and issubclass(annotation, Context)) or _is_context(annotation):
            continue
        default = ... if parameter.default is inspect.Parameter.empty else parameter.default
        fields[name] = (annotation, default)
    return create_model(f"{fn.__name__}_arguments", **fields)


def _is_context(annotation: Any) -> bool:
    origin = getattr(annotation, "__origin__", None)
    return isinstance(origin, type) and issubclass(origin, Context)


def input_schema(fn: Callable[..., Any]) -> dict[str, Any]:
    return arguments_model(fn).model_json_schema(schema_generator=PortableInput)


def output_schema(model: type[BaseModel]) -> dict[str, Any]:
    return model.model_json_schema(schema_generator=CompactOutput)
