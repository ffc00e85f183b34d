"""The request bodies the proxy accepts, validated before anything is sent upstream.

Unknown fields are allowed and forwarded untouched (providers add parameters faster than any
gateway); known fields are checked so that a bad request fails here with a precise message.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    model_validator,
)

from routing.errors import GatewayError


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class FunctionDefinition(_Open):
    name: StrictStr = Field(min_length=1, max_length=64, pattern=r"^[a-zA-Z0-9_-]+$")
    description: StrictStr | None = None
    parameters: dict[str, Any] | None = None


class Tool(_Open):
    type: StrictStr
    function: FunctionDefinition | None = None

    @model_validator(mode="after")
    def _function_tools_have_a_function(self) -> Tool:
        if self.type == "function" and self.function is None:
            raise ValueError("a tool of type 'function' needs a 'function' object")
        return self


class ToolCallFunction(_Open):
    name: StrictStr
    arguments: StrictStr


class ToolCall(_Open):
    id: StrictStr
    type: StrictStr = "function"
    function: ToolCallFunction | None = None

    @model_validator(mode="after")
    def _function_calls_have_a_function(self) -> ToolCall:
        # A `custom` (freeform) tool's call carries `custom: {name, input}` instead.
        if self.type == "function" and self.function is None:
            raise ValueError("a tool call of type 'function' needs a 'function' object")
        return self


class Message(_Open):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: StrictStr | list[dict[str, Any]] | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: StrictStr | None = None

    @model_validator(mode="after")
    def _roles_have_what_they_need(self) -> Message:
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a 'tool' message needs the 'tool_call_id' it answers")
        if self.role in ("system", "developer", "user") and self.content is None:
            raise ValueError(f"a '{self.role}' message needs 'content'")
        if self.role == "assistant" and self.content is None and not self.tool_calls:
            raise ValueError("an 'assistant' message needs 'content' or 'tool_calls'")
        return self


class StreamOptions(_Open):
    include_usage: StrictBool | None = None


class ChatCompletionRequest(_Open):
    model: StrictStr = Field(min_length=1)
    messages: list[Message] = Field(min_length=1)
    stream: StrictBool | None = False
    stream_options: StreamOptions | None = None
    tools: list[Tool] | None = None
    tool_choice: StrictStr | dict[str, Any] | None = None
    max_tokens: StrictInt | None = Field(default=None, ge=1)
    max_completion_tokens: StrictInt | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    n: StrictInt | None = Field(default=None, ge=1, le=128)
    stop: StrictStr | list[StrictStr] | None = None  # translated for Anthropic after admission
    user: StrictStr | None = Field(default=None, max_length=200)  # audit column
    metadata: dict[StrictStr, StrictStr] | None = Field(default=None, max_length=16)

    @model_validator(mode="after")
    def _stream_options_need_a_stream(self) -> ChatCompletionRequest:
        if self.stream_options is not None and not self.stream:
            raise ValueError("'stream_options' is only allowed when 'stream' is true")
        return self


class EmbeddingsRequest(_Open):
    model: StrictStr = Field(min_length=1)
    input: StrictStr | list[StrictStr] | list[StrictInt] | list[list[StrictInt]]
    encoding_format: Literal["float", "base64"] | None = None
    dimensions: StrictInt | None = Field(default=None, ge=1)
    user: StrictStr | None = Field(default=None, max_length=200)  # audit column

    @model_validator(mode="after")
    def _input_is_not_empty(self) -> EmbeddingsRequest:
        if self.input == "" or self.input == [] or self.input == [""]:
            raise ValueError("'input' must not be empty")
        return self


class AnthropicMessagesRequest(_Open):
    """Anthropic's Messages body, checked as far as the gateway needs before translating it."""

    model: StrictStr = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    max_tokens: StrictInt = Field(ge=1)
    stream: StrictBool | None = False
    system: StrictStr | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None


class AnthropicCountTokensRequest(_Open):
    """Anthropic's count_tokens body: a Messages body without `max_tokens`."""

    model: StrictStr = Field(min_length=1)
    messages: list[dict[str, Any]] = Field(min_length=1)
    system: StrictStr | list[dict[str, Any]] | None = None
    tools: list[dict[str, Any]] | None = None


class ResponsesRequest(_Open):
    """OpenAI's Responses body, checked as far as the gateway needs before translating it."""

    model: StrictStr = Field(min_length=1)
    input: StrictStr | list[dict[str, Any]] = Field(min_length=1)
    instructions: StrictStr | None = None
    stream: StrictBool | None = False
    # True by default: the gateway keeps the response for the tenant (routing/responses_state/).
    store: StrictBool | None = None
    # Continue a stored response: the gateway sends its whole context, then `input`.
    previous_response_id: StrictStr | None = Field(default=None, min_length=1, max_length=64)
    tools: list[dict[str, Any]] | None = None
    max_output_tokens: StrictInt | None = Field(default=None, ge=1)
    user: StrictStr | None = Field(default=None, max_length=200)  # audit column
    metadata: dict[StrictStr, StrictStr] | None = Field(default=None, max_length=16)


def _param(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif part in {"str", "list[dict[str,any]]", "function-after[_roles_have_what_they_need()]"}:
            continue  # pydantic's union-branch markers mean nothing to a caller
        else:
            text += f".{part}" if text else str(part)
    return text


def validation_error(exc: ValidationError) -> GatewayError:
    first = exc.errors(include_url=False)[0]
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and ("[" in p or "-" in p)))
    param = _param(loc) or None
    message = first["msg"].removeprefix("Value error, ")
    where = f" at '{param}'" if param else ""
    return GatewayError(
        400, f"Invalid request{where}: {message}.", param=param, code="invalid_value"
    )


def validate_chat(raw: dict[str, Any]) -> ChatCompletionRequest:
    try:
        return ChatCompletionRequest.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validate_embeddings(raw: dict[str, Any]) -> EmbeddingsRequest:
    try:
        return EmbeddingsRequest.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


# The Messages API betas under which a system message may stand between turns (Claude Code
# sends them together).
SYSTEM_TURN_BETAS = ("per-turn-control-",)


def _anthropic_roles(raw: dict[str, Any], betas: str) -> None:
    """Anthropic refuses a system message inside `messages` (it belongs in top-level `system`)
    unless a beta that allows it is named; so does the gateway, on every route, rather than
    quietly moving it."""
    named = [beta.strip() for beta in betas.split(",")]
    if any(beta.startswith(SYSTEM_TURN_BETAS) for beta in named):
        return
    messages = raw.get("messages")
    for n, message in enumerate(messages if isinstance(messages, list) else ()):
        if isinstance(message, dict) and message.get("role") == "system":
            raise GatewayError(
                400,
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.',
                code="invalid_value",
                param=f"messages.{n}.role",
            )


def validate_messages(raw: dict[str, Any], *, betas: str = "") -> AnthropicMessagesRequest:
    """`betas`: the request's `anthropic-beta` header."""
    _anthropic_roles(raw, betas)
    try:
        return AnthropicMessagesRequest.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validate_responses(raw: dict[str, Any]) -> ResponsesRequest:
    try:
        return ResponsesRequest.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None


def validate_count_tokens(raw: dict[str, Any], *, betas: str = "") -> AnthropicCountTokensRequest:
    _anthropic_roles(raw, betas)
    try:
        return AnthropicCountTokensRequest.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(exc) from None
