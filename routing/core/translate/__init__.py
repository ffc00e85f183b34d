"""Pure translations between wire formats; the gateway's internal form is OpenAI's.

No I/O here: adapters and the client-facing wires (routing/wire.py) call these functions.
"""

from routing.core.translate.anthropic_common import (
    RAW_ARGUMENTS_KEY,
    anthropic_error_to_openai,
    anthropic_usage,
    openai_error_to_anthropic,
    openai_usage,
)
from routing.core.translate.anthropic_request import (
    DEFAULT_MAX_TOKENS,
    DROPPED_FIELDS,
    openai_request_to_anthropic,
)
from routing.core.translate.anthropic_request_reverse import (
    anthropic_request_to_openai,
    untranslatable_fields,
)
from routing.core.translate.anthropic_response import (
    anthropic_response_to_openai,
    openai_response_to_anthropic,
)
from routing.core.translate.anthropic_stream import (
    AnthropicToOpenAIStream,
    OpenAIToAnthropicStream,
)
from routing.core.translate.responses_request import (
    UnsupportedRequest,
    openai_request_to_responses,
    responses_request_to_openai,
)
from routing.core.translate.responses_response import (
    ChatToResponsesStream,
    ResponseContext,
    openai_response_to_responses,
)

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "DROPPED_FIELDS",
    "RAW_ARGUMENTS_KEY",
    "AnthropicToOpenAIStream",
    "ChatToResponsesStream",
    "OpenAIToAnthropicStream",
    "ResponseContext",
    "UnsupportedRequest",
    "anthropic_error_to_openai",
    "anthropic_request_to_openai",
    "anthropic_response_to_openai",
    "anthropic_usage",
    "openai_error_to_anthropic",
    "openai_request_to_anthropic",
    "openai_request_to_responses",
    "openai_response_to_anthropic",
    "openai_response_to_responses",
    "openai_usage",
    "responses_request_to_openai",
    "untranslatable_fields",
]
