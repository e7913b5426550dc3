"""The types of the tools' arguments. What the tools return is in suno_stems_mcp.core.results."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

JobId = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
"""An apiframe job id: a uuid, in any case (the arguments check holds it to the format)."""
WebhookEvent = Literal["progress", "completed", "failed"]
