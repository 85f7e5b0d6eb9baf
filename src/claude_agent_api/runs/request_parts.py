"""The nested parts of a query request: prompt blocks, presets, subagents, MCP servers, plugins, output format.

Every model forbids unknown fields, so a misspelt option is a 422 naming it rather than a silent no-op. What
can be checked without the server's policy is checked here: sizes, patterns, base64 images, JSON Schemas,
``${VAR}`` syntax, relative paths. Paths are proven to stay inside the key's workspace later, by
``agent.options.validate_paths``, which knows the workspace.
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for
from pydantic import AfterValidator, BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator

from .request_rules import MAX_ENV_VALUE, var_syntax_problem

MAX_PROMPT_CHARS = 500_000
MAX_IMAGE_BYTES = 5 * 1024 * 1024
# Values the SDK passes to the CLI as one command-line argument; Linux caps one argument at 128 KiB.
MAX_ARGUMENT_BYTES = 100_000

EffortLevel = Literal["low", "medium", "high", "xhigh", "max"]
PermissionModeName = Literal["default", "acceptEdits", "plan", "bypassPermissions", "dontAsk"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _not_option_like(value: str) -> str:
    if value.startswith("-"):
        raise ValueError("must not start with '-'")
    return value


def fits_argument(value: str) -> str:
    if len(value.encode()) > MAX_ARGUMENT_BYTES:
        raise ValueError(f"longer than {MAX_ARGUMENT_BYTES} bytes")
    return value


def _relative_path(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains a NUL byte")
    path = PurePosixPath(value)
    if path.is_absolute():
        raise ValueError("must be relative to the workspace")
    if ".." in path.parts:
        raise ValueError("must not contain '..'")
    return value


def _var_syntax(value: str) -> str:
    if problem := var_syntax_problem(value):
        raise ValueError(problem)
    return value


ModelName = Annotated[str, Field(pattern=r"^[A-Za-z0-9._:\-\[\]]{1,100}$"), AfterValidator(_not_option_like)]
RelativePath = Annotated[str, Field(min_length=1, max_length=1024), AfterValidator(_relative_path)]
SkillName = Annotated[
    str,
    Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}(:[A-Za-z0-9][A-Za-z0-9_.-]{0,127})?$"),
]
ToolNames = Annotated[list[str], Field(max_length=200)]
PromptText = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT_CHARS)]
McpString = Annotated[str, Field(max_length=MAX_ENV_VALUE), AfterValidator(_var_syntax)]


# --- prompt ------------------------------------------------------------------------------------------------

_MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


class TextBlock(Strict):
    type: Literal["text"]
    text: PromptText = Field(description="Text of the prompt.")


class Base64ImageSource(Strict):
    type: Literal["base64"]
    media_type: Literal["image/png", "image/jpeg", "image/gif", "image/webp"]
    data: str = Field(description="The image, base64-encoded (standard alphabet); at most 5 MB decoded.")

    @field_validator("data")
    @classmethod
    def _decodable(cls, value: str) -> str:
        if len(value) > (MAX_IMAGE_BYTES + 2) // 3 * 4:
            raise ValueError(f"image larger than {MAX_IMAGE_BYTES} bytes")
        try:
            raw = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("not valid base64") from exc
        if not raw:
            raise ValueError("empty image")
        if len(raw) > MAX_IMAGE_BYTES:
            raise ValueError(f"image larger than {MAX_IMAGE_BYTES} bytes")
        return value

    def decoded(self) -> bytes:
        return base64.b64decode(self.data, validate=True)


class ImageBlock(Strict):
    type: Literal["image"]
    source: Base64ImageSource

    @field_validator("source")
    @classmethod
    def _media_type_matches(cls, source: Base64ImageSource) -> Base64ImageSource:
        head = source.decoded()[:16]
        if source.media_type == "image/webp":
            ok = head[:4] == b"RIFF" and head[8:12] == b"WEBP"
        else:
            ok = head.startswith(_MAGIC[source.media_type])
        if not ok:
            raise ValueError(f"data is not a {source.media_type} image")
        return source


ContentBlock = Annotated[TextBlock | ImageBlock, Field(discriminator="type")]


# --- presets -----------------------------------------------------------------------------------------------


class SystemPromptPresetSpec(Strict):
    type: Literal["preset"]
    preset: Literal["claude_code"]
    append: Annotated[str, AfterValidator(fits_argument)] | None = Field(
        default=None, description="Text appended to the Claude Code system prompt."
    )


class ToolsPresetSpec(Strict):
    type: Literal["preset"]
    preset: Literal["claude_code"]


# --- subagents ---------------------------------------------------------------------------------------------


class AgentSpec(Strict):
    """A subagent the model can start with the ``Agent`` (``Task``) tool; mapped to the SDK's AgentDefinition."""

    description: str = Field(min_length=1, max_length=2000, description="When the model should use this agent.")
    prompt: str = Field(min_length=1, max_length=MAX_PROMPT_CHARS, description="The subagent's system prompt.")
    tools: ToolNames | None = Field(default=None, description="Tools the subagent may use (default: inherited).")
    disallowed_tools: ToolNames | None = Field(default=None, description="Tools the subagent may not use.")
    model: ModelName | None = Field(default=None, description="Model alias ('sonnet', 'inherit'…) or model id.")
    max_turns: int | None = Field(default=None, ge=1, le=500)
    background: bool | None = Field(default=None, description="Run in the background (the CLI's default).")
    effort: EffortLevel | None = None
    permission_mode: PermissionModeName | None = None
    skills: Annotated[list[SkillName], Field(max_length=100)] | None = None


# --- MCP servers -------------------------------------------------------------------------------------------

_HEADER_NAME = r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$"
_STDIO_ENV_NAME = r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://", "${")):
        raise ValueError("must be an http:// or https:// URL")
    if any(c in value for c in "\r\n\t "):
        raise ValueError("must not contain whitespace")
    return value


def _header_value(value: str) -> str:
    if any(c in value for c in "\r\n"):
        raise ValueError("must not contain line breaks")
    return value


class McpStdioSpec(Strict):
    type: Literal["stdio"] = "stdio"
    command: Annotated[McpString, Field(min_length=1)] = Field(description="Program to start (on the server).")
    args: Annotated[list[McpString], Field(max_length=100)] | None = None
    env: dict[Annotated[str, Field(pattern=_STDIO_ENV_NAME)], McpString] | None = Field(default=None, max_length=100)


class McpSseSpec(Strict):
    type: Literal["sse"]
    url: Annotated[McpString, AfterValidator(_http_url)]
    headers: (
        dict[Annotated[str, Field(pattern=_HEADER_NAME)], Annotated[McpString, AfterValidator(_header_value)]] | None
    ) = Field(default=None, max_length=50)


class McpHttpSpec(Strict):
    type: Literal["http"]
    url: Annotated[McpString, AfterValidator(_http_url)]
    headers: (
        dict[Annotated[str, Field(pattern=_HEADER_NAME)], Annotated[McpString, AfterValidator(_header_value)]] | None
    ) = Field(default=None, max_length=50)


def _mcp_kind(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("type")
        if kind is None and "command" in value:
            return "stdio"
        return kind if isinstance(kind, str) else None
    return getattr(value, "type", None)


McpServerSpec = Annotated[
    Annotated[McpStdioSpec, Tag("stdio")] | Annotated[McpSseSpec, Tag("sse")] | Annotated[McpHttpSpec, Tag("http")],
    Discriminator(
        _mcp_kind,
        custom_error_type="mcp_server_type",
        custom_error_message="type must be 'stdio' (with command), 'sse' or 'http'",
    ),
]


# --- plugins and structured output -------------------------------------------------------------------------


class PluginSpec(Strict):
    type: Literal["local"]
    path: RelativePath = Field(description="Plugin directory, relative to the key's workspace.")


class OutputFormatSpec(Strict):
    """Structured output: the final answer must validate against ``schema`` (a JSON Schema for an object)."""

    model_config = ConfigDict(extra="forbid", serialize_by_alias=True)

    type: Literal["json_schema"]
    json_schema: dict[str, Any] = Field(
        alias="schema", description="JSON Schema (Draft 2020-12 unless $schema says otherwise) of an object."
    )

    @field_validator("json_schema")
    @classmethod
    def _valid_schema(cls, schema: dict[str, Any]) -> dict[str, Any]:
        meta = schema.get("$schema")
        if meta is not None and not isinstance(meta, str):
            raise ValueError("$schema must be a string")
        try:
            validator_for(schema, default=Draft202012Validator).check_schema(schema)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON Schema: {exc.message}") from None
        if schema.get("type") != "object":
            raise ValueError('must describe an object ("type": "object")')
        if len(json.dumps(schema).encode()) > MAX_ARGUMENT_BYTES:
            raise ValueError(f"longer than {MAX_ARGUMENT_BYTES} bytes as JSON")
        return schema
