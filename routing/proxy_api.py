"""The OpenAI-compatible proxy API (`/v1/...`). Thin: the flows live in routing/pipeline.py."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from ninja import NinjaAPI, Router
from ninja.errors import AuthenticationError, HttpError, ValidationError

from audit.writer import is_outage
from gateway_site.api_docs import api_docs_view
from routing import counting, pipeline
from routing.call import audit_unavailable, checked_header, parse_json_body
from routing.caller import END_USER_HEADER
from routing.errors import GatewayError
from routing.responses_state import conversations
from routing.responses_state import proxy as responses_state
from routing.runtime import get_runtime
from routing.schemas import (
    AnthropicCountTokensRequest,
    AnthropicMessagesRequest,
    ChatCompletionRequest,
    EmbeddingsRequest,
    ResponsesRequest,
)
from routing.wire import AnthropicWire
from tenants.auth import KeyIdentity, bearer_token

logger = logging.getLogger(__name__)


class VirtualKeyAuth:
    """Async auth for Ninja: the built-in auth classes are sync and would hop threads."""

    openapi_type = "http"
    openapi_scheme = "bearer"

    async def __call__(self, request: HttpRequest) -> KeyIdentity:
        runtime = get_runtime()
        if not runtime.audit.available():
            # The database is down: nothing could be recorded, so nothing is served or sent to
            # a provider. Refused at once, without waiting on a connection that cannot come.
            raise audit_unavailable()
        try:
            return await runtime.keys.identify(bearer_token(request))
        except Exception as error:
            if not is_outage(error):
                raise
            runtime.audit.database_failed(error)
            raise audit_unavailable() from None


def _body_doc(schema: type[Any]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": schema.model_json_schema()}},
        }
    }


router = Router(auth=VirtualKeyAuth(), tags=["proxy"])


@router.post(
    "/chat/completions",
    openapi_extra=_body_doc(ChatCompletionRequest),
    summary="Create a chat completion (streaming and tools supported)",
)
@pipeline.recorded_on_fault
async def chat_completions(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return await pipeline.chat_completions(request, request.auth)  # type: ignore[attr-defined]


@router.post(
    "/messages",
    openapi_extra=_body_doc(AnthropicMessagesRequest),
    summary="Create a message (Anthropic's Messages API; streaming and tools supported)",
)
@pipeline.recorded_on_fault
async def messages(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return await pipeline.messages(request, request.auth)  # type: ignore[attr-defined]


@router.post(
    "/messages/count_tokens",
    openapi_extra=_body_doc(AnthropicCountTokensRequest),
    summary="Count a message's input tokens (Anthropic's count_tokens; no cost)",
)
@pipeline.recorded_on_fault
async def count_tokens(request: HttpRequest) -> HttpResponse:
    return await counting.count_tokens(request, request.auth)  # type: ignore[attr-defined]


@router.post(
    "/responses",
    openapi_extra=_body_doc(ResponsesRequest),
    summary="Create a response (OpenAI's Responses API; store, previous_response_id, streaming and tools)",
)
@pipeline.recorded_on_fault
async def responses(request: HttpRequest) -> HttpResponse | StreamingHttpResponse:
    return await pipeline.responses(request, request.auth)  # type: ignore[attr-defined]


@router.get("/responses/{response_id}", summary="Retrieve a stored response (this tenant's)")
async def response_retrieve(request: HttpRequest, response_id: str) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    return _json(
        await responses_state.retrieve(tenant_id=identity.tenant_id, response_id=response_id)
    )


@router.delete("/responses/{response_id}", summary="Delete a stored response (this tenant's)")
async def response_delete(request: HttpRequest, response_id: str) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    return _json(
        await responses_state.delete(tenant_id=identity.tenant_id, response_id=response_id)
    )


@router.post(
    "/responses/{response_id}/cancel",
    summary="Cancel a background response (none run here: a stored one says so, 400)",
)
async def response_cancel(request: HttpRequest, response_id: str) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    return _json(
        await responses_state.cancel(tenant_id=identity.tenant_id, response_id=response_id)
    )


@router.get(
    "/responses/{response_id}/input_items",
    summary="List the input items a stored response was given (after, limit, order)",
)
async def response_input_items(request: HttpRequest, response_id: str) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    after, limit, order = _page_params(request)
    page = await responses_state.input_items(
        tenant_id=identity.tenant_id, response_id=response_id, after=after, limit=limit, order=order
    )
    return _json(page)


def _is_number(text: str) -> bool:
    # ASCII only: `isdigit` alone takes "²" (which `int` refuses: a 500) and other scripts' digits.
    return text.isascii() and text.isdigit()


def _page_params(request: HttpRequest) -> tuple[str | None, int, str]:
    """`after`, `limit` (1-100, 20 by default) and `order` (newest first by default)."""
    raw_limit = request.GET.get("limit") or "20"
    if not _is_number(raw_limit):
        raise GatewayError(
            400, "'limit' must be between 1 and 100.", code="invalid_value", param="limit"
        )
    return request.GET.get("after") or None, int(raw_limit[:4]), request.GET.get("order") or "desc"


def _end_user(request: HttpRequest) -> str:
    """The end user a client names (as on a model call): what it adds is theirs to erase."""
    return checked_header(request.headers.get(END_USER_HEADER, ""), END_USER_HEADER)


def _object_body(request: HttpRequest) -> dict[str, Any]:
    body = parse_json_body(request) if request.body else {}
    if not isinstance(body, dict):
        raise GatewayError(400, "The request body must be a JSON object.", code="invalid_value")
    return body


@router.post("/conversations", summary="Create a conversation (metadata, up to 20 items)")
async def conversation_create(request: HttpRequest) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    return _json(
        await conversations.create(
            tenant_id=identity.tenant_id,
            api_key_id=identity.key_id,
            body=_object_body(request),
            end_user=_end_user(request),
        )
    )


@router.get("/conversations/{conversation_id}", summary="Retrieve a conversation (this tenant's)")
async def conversation_retrieve(request: HttpRequest, conversation_id: str) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    return _json(
        await conversations.retrieve(tenant_id=identity.tenant_id, conversation_id=conversation_id)
    )


@router.post("/conversations/{conversation_id}", summary="Update a conversation's metadata")
async def conversation_update(request: HttpRequest, conversation_id: str) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    return _json(
        await conversations.update(
            tenant_id=identity.tenant_id,
            conversation_id=conversation_id,
            body=_object_body(request),
        )
    )


@router.delete("/conversations/{conversation_id}", summary="Delete a conversation and its items")
async def conversation_delete(request: HttpRequest, conversation_id: str) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    return _json(
        await conversations.delete(tenant_id=identity.tenant_id, conversation_id=conversation_id)
    )


@router.get(
    "/conversations/{conversation_id}/items",
    summary="List a conversation's items (after, limit, order)",
)
async def conversation_items(request: HttpRequest, conversation_id: str) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    after, limit, order = _page_params(request)
    return _json(
        await conversations.items_list(
            tenant_id=identity.tenant_id,
            conversation_id=conversation_id,
            after=after,
            limit=limit,
            order=order,
        )
    )


@router.post("/conversations/{conversation_id}/items", summary="Add items to a conversation")
async def conversation_items_add(request: HttpRequest, conversation_id: str) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    return _json(
        await conversations.items_add(
            tenant_id=identity.tenant_id,
            conversation_id=conversation_id,
            body=_object_body(request),
            end_user=_end_user(request),
        )
    )


@router.get(
    "/conversations/{conversation_id}/items/{item_id}", summary="Retrieve one conversation item"
)
async def conversation_item(
    request: HttpRequest, conversation_id: str, item_id: str
) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    return _json(
        await conversations.item_get(
            tenant_id=identity.tenant_id, conversation_id=conversation_id, item_id=item_id
        )
    )


@router.delete(
    "/conversations/{conversation_id}/items/{item_id}",
    summary="Delete one conversation item (answers the conversation)",
)
async def conversation_item_delete(
    request: HttpRequest, conversation_id: str, item_id: str
) -> HttpResponse:
    identity: KeyIdentity = request.auth  # type: ignore[attr-defined]
    return _json(
        await conversations.item_delete(
            tenant_id=identity.tenant_id, conversation_id=conversation_id, item_id=item_id
        )
    )


@router.post("/embeddings", openapi_extra=_body_doc(EmbeddingsRequest), summary="Create embeddings")
@pipeline.recorded_on_fault
async def embeddings(request: HttpRequest) -> HttpResponse:
    return await pipeline.embeddings(request, request.auth)  # type: ignore[attr-defined]


def _not_allowed(request: HttpRequest, path: str, allowed: str) -> HttpResponse:
    return GatewayError(
        405,
        f"Method {request.method} is not allowed on /v1{path}; use {allowed}.",
        code="method_not_allowed",
        headers={"allow": allowed},
    ).response(wire=_wire(request))


# Served by no endpoint, yet sent (HEAD by probes, OPTIONS by browsers' preflight): without an
# operation of their own, Ninja would answer them in HTML.
_NEVER_SERVED = ("HEAD", "OPTIONS")


def _method_not_allowed(path: str, allowed: str) -> None:
    """Ninja answers a method no operation declares in plain text: answer in the API's format."""
    others = [m for m in ("GET", "POST", "PUT", "PATCH", "DELETE") if m != allowed]
    others.extend(_NEVER_SERVED)

    async def not_allowed(request: HttpRequest) -> HttpResponse:
        return _not_allowed(request, path, allowed)

    router.api_operation(others, path, auth=None, include_in_schema=False)(not_allowed)


_method_not_allowed("/chat/completions", "POST")
_method_not_allowed("/embeddings", "POST")
_method_not_allowed("/messages", "POST")
_method_not_allowed("/responses", "POST")
_method_not_allowed("/messages/count_tokens", "POST")
_method_not_allowed("/models", "GET")


def _model_object(name: str, request: HttpRequest) -> dict[str, Any]:
    if _anthropic_client(request):
        return {
            "type": "model",
            "id": name,
            "display_name": name,
            "created_at": "1970-01-01T00:00:00Z",
        }
    return {"id": name, "object": "model", "created": 0, "owned_by": "gateway"}


def _anthropic_client(request: HttpRequest) -> bool:
    """Anthropic's SDKs and Claude Code send `anthropic-version` on every call; OpenAI's never."""
    return bool(request.headers.get("anthropic-version"))


def _anthropic_page(request: HttpRequest, names: list[str]) -> dict[str, Any]:
    """Anthropic's list shape and paging (`limit` 1-1000, `after_id`, `before_id`)."""
    raw_limit = request.GET.get("limit") or "20"
    if not _is_number(raw_limit) or not 1 <= int(raw_limit[:5]) <= 1000:
        raise GatewayError(
            400, "limit: must be between 1 and 1000.", code="invalid_value", param="limit"
        )
    limit = int(raw_limit)
    start, end = 0, len(names)
    if after := request.GET.get("after_id"):
        start = names.index(after) + 1 if after in names else len(names)
    if before := request.GET.get("before_id"):
        end = names.index(before) if before in names else 0
        start = max(start, end - limit)
    page = names[start:end][:limit]
    return {
        "data": [_model_object(name, request) for name in page],
        "has_more": start + len(page) < end,
        "first_id": page[0] if page else None,
        "last_id": page[-1] if page else None,
    }


@router.get(
    "/models", summary="List the models this key may use (Anthropic's shape with anthropic-version)"
)
async def list_models(request: HttpRequest) -> HttpResponse:
    names = await pipeline.list_models(request.auth)  # type: ignore[attr-defined]
    if _anthropic_client(request):
        return _json(_anthropic_page(request, list(names)))
    return _json({"object": "list", "data": [_model_object(name, request) for name in names]})


@router.get("/models/{path:model}", summary="Retrieve one model")
async def retrieve_model(request: HttpRequest, model: str) -> HttpResponse:
    if not await pipeline.model_usable(request.auth, model):  # type: ignore[attr-defined]
        raise GatewayError(
            404,
            f"The model '{model}' does not exist or your key cannot use it.",
            code="model_not_found",
            param="model",
        )
    return _json(_model_object(model, request))


@router.api_operation(
    [*_NEVER_SERVED, "POST", "PUT", "PATCH", "DELETE"],
    "/models/{path:model}",
    auth=None,
    include_in_schema=False,
)
async def _model_not_allowed(request: HttpRequest, model: str) -> HttpResponse:
    return _not_allowed(request, "/models/{model}", "GET")


@router.api_operation(
    [*_NEVER_SERVED, "POST", "PUT", "PATCH"],
    "/responses/{response_id}",
    auth=None,
    include_in_schema=False,
)
async def _response_not_allowed(request: HttpRequest, response_id: str) -> HttpResponse:
    return _not_allowed(request, "/responses/{response_id}", "GET, DELETE")


@router.api_operation(
    [*_NEVER_SERVED, "POST", "PUT", "PATCH", "DELETE"],
    "/responses/{response_id}/input_items",
    auth=None,
    include_in_schema=False,
)
async def _input_items_not_allowed(request: HttpRequest, response_id: str) -> HttpResponse:
    return _not_allowed(request, "/responses/{response_id}/input_items", "GET")


@router.api_operation(
    [*_NEVER_SERVED, "GET", "PUT", "PATCH", "DELETE"],
    "/responses/{response_id}/cancel",
    auth=None,
    include_in_schema=False,
)
async def _cancel_not_allowed(request: HttpRequest, response_id: str) -> HttpResponse:
    return _not_allowed(request, "/responses/{response_id}/cancel", "POST")


_method_not_allowed("/conversations", "POST")


@router.api_operation(
    [*_NEVER_SERVED, "PUT", "PATCH"],
    "/conversations/{conversation_id}",
    auth=None,
    include_in_schema=False,
)
async def _conversation_not_allowed(request: HttpRequest, conversation_id: str) -> HttpResponse:
    return _not_allowed(request, "/conversations/{conversation_id}", "GET, POST, DELETE")


@router.api_operation(
    [*_NEVER_SERVED, "PUT", "PATCH", "DELETE"],
    "/conversations/{conversation_id}/items",
    auth=None,
    include_in_schema=False,
)
async def _items_not_allowed(request: HttpRequest, conversation_id: str) -> HttpResponse:
    return _not_allowed(request, "/conversations/{conversation_id}/items", "GET, POST")


@router.api_operation(
    [*_NEVER_SERVED, "POST", "PUT", "PATCH"],
    "/conversations/{conversation_id}/items/{item_id}",
    auth=None,
    include_in_schema=False,
)
async def _item_not_allowed(
    request: HttpRequest, conversation_id: str, item_id: str
) -> HttpResponse:
    return _not_allowed(request, "/conversations/{conversation_id}/items/{item_id}", "GET, DELETE")


def _json(body: dict[str, Any], status: int = 200) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type="application/json")


def _wire(request: HttpRequest) -> AnthropicWire | None:
    """Errors answer in the wire format of the endpoint that was called (the models list in
    the format of the client that asked)."""
    anthropic = request.path.startswith("/v1/messages") or (
        request.path.startswith("/v1/models") and _anthropic_client(request)
    )
    return AnthropicWire() if anthropic else None


def build_api() -> NinjaAPI:
    api = NinjaAPI(
        title="AI gateway: proxy API",
        version="1",
        description="OpenAI-compatible endpoints. Authenticate with a gateway key: `Authorization: Bearer gw-…`.",
        urls_namespace="proxy",
        docs_url="/docs",
        docs_decorator=api_docs_view,
    )
    api.add_router("/", router)

    @api.exception_handler(GatewayError)
    def _gateway_error(request: HttpRequest, exc: GatewayError) -> HttpResponse:
        return exc.response(wire=_wire(request))

    @api.exception_handler(AuthenticationError)
    def _auth_error(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
        return GatewayError(401, "Invalid API key.", code="invalid_api_key").response(
            wire=_wire(request)
        )

    @api.exception_handler(ValidationError)
    def _validation_error(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return GatewayError(400, f"Invalid request: {exc.errors}", code="invalid_value").response(
            wire=_wire(request)
        )

    @api.exception_handler(HttpError)
    def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
        return GatewayError(exc.status_code, str(exc), code="http_error").response(
            wire=_wire(request)
        )

    @api.exception_handler(Exception)
    def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
        logger.exception("unexpected error in %s %s", request.method, request.path)
        return GatewayError(
            500,
            "The gateway failed unexpectedly; the error was logged.",
            type="server_error",
            code="internal_error",
        ).response(wire=_wire(request))

    return api


proxy_api = build_api()
