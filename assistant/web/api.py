"""An OpenAI-compatible API on the app's own server: `POST /v1/chat/completions` (plain or streamed
over SSE) and `GET /v1/models`, as a FastAPI router the web app mounts.

The messages are the conversation: the last one is the question, the user and assistant messages
before it the history (system messages are ignored: the assistant keeps its own). Nothing is saved.
The answer text carries the [n] markers; the cited sources (file, question, passage, span, score) come
in an extra `sources` field, and with `"sources_footer": true` (or the setting `api_sources_footer`)
also as a Markdown "Sources" footer for clients that show only text. An abstention is an ordinary
answer (`"abstained": true`); failures are OpenAI-style errors with a 4xx/5xx status, never a trace.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from assistant.chat.answer import extras, footer, strip_footer
from assistant.chat.chain import Answer, message_text
from assistant.chat.messages import plain, too_long
from assistant.knowledge.retrieval import EmptyQueryError
from assistant.llm.errors import LLMError
from assistant.web.guard import request_id

log = logging.getLogger(__name__)

MODEL_ID = "dl-assistant"
_DONE = object()


class ApiError(Exception):
    def __init__(
        self, status: int, message: str, kind: str = "invalid_request_error", code: str | None = None
    ):
        super().__init__(message)
        self.status, self.message, self.kind, self.code = status, message, kind, code

    retry_after: float | None = None

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": self.kind, "param": None, "code": self.code}}
        headers = {"WWW-Authenticate": "Bearer"} if self.status == 401 else {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, round(self.retry_after)))
        return JSONResponse(body, status_code=self.status, headers=headers or None)


# --- the request ---------------------------------------------------------------------------------


async def read_json(request: Request, limit: int, max_depth: int = 32) -> dict[str, Any]:
    """The body as a JSON object: 413 past `limit` bytes (counted as it arrives), 400 if not JSON or
    nested deeper than `max_depth`."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"the request body is larger than {limit} bytes", code="request_too_large")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise ApiError(413, f"the request body is larger than {limit} bytes", code="request_too_large")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise ApiError(400, "the request body is not valid JSON", code="invalid_json") from None
    except RecursionError:
        data = None  # nested past Python's own limit: too deep either way
    if data is None or depth(data) > max_depth:
        raise ApiError(400, f"the request body is nested more than {max_depth} levels deep", code="too_deep")
    if not isinstance(data, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return data


def depth(value: Any) -> int:
    """How deeply lists and objects nest in a parsed JSON value (iteratively: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            stack.extend((child, level + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_chat(
    data: dict[str, Any], max_message_kb: int = 256, max_new_tokens: int = 1024
) -> tuple[str, list[dict[str, str]], dict[str, Any]]:
    """(question, history, generation options) from a chat completions request."""
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "`messages` must be a non-empty list of {role, content}", code="invalid_messages")
    turns: list[dict[str, str]] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise ApiError(400, f"messages[{i}] must be an object with a `role`", code="invalid_messages")
        if m["role"] in {"user", "assistant"}:
            text = message_text(m.get("content"))
            turns.append(
                {"role": m["role"], "content": strip_footer(text) if m["role"] == "assistant" else text}
            )
    if not turns or turns[-1]["role"] != "user":
        raise ApiError(400, "the last message must be the user's question", code="invalid_messages")
    if not turns[-1]["content"].strip():
        raise ApiError(400, "the question is empty: ask about training a model", code="empty_question")
    if why := too_long(turns[-1]["content"], max_message_kb):
        raise ApiError(400, why, code="message_too_long")
    gen: dict[str, Any] = {}
    max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
    if max_tokens is not None:
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ApiError(400, "`max_tokens` must be a positive integer", code="invalid_max_tokens")
        if max_tokens > max_new_tokens:
            raise ApiError(
                400,
                f"`max_tokens` is at most {max_new_tokens} here (max_new_tokens_limit)",
                code="invalid_max_tokens",
            )
        gen["max_new_tokens"] = max_tokens
    temperature = data.get("temperature")
    if temperature is not None:
        if (
            not isinstance(temperature, int | float)
            or isinstance(temperature, bool)
            or not 0 <= temperature <= 2
        ):
            raise ApiError(400, "`temperature` must be a number from 0 to 2", code="invalid_temperature")
        gen["temperature"] = float(temperature)
    return turns[-1]["content"], turns[:-1], gen


# --- the answer ----------------------------------------------------------------------------------


class ChatAPI:
    def __init__(
        self, assistant: Any, accounts: Any = None, *, auth: bool = False, metrics: Any = None
    ) -> None:
        settings = assistant.settings
        self.metrics = metrics  # web/metrics.py: answers counted, when given
        self.assistant = assistant
        self.accounts = accounts
        self.auth = auth
        self.settings = settings
        self.max_body = settings.api_max_body_kb * 1024
        self.footer_default = settings.api_sources_footer
        if auth and accounts is None:
            raise ValueError("the API needs the accounts to check keys when auth is on")

    async def user(self, request: Request) -> Any:
        if not self.auth:
            return None
        header = request.headers.get("authorization", "")
        scheme, _, key = header.partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, "an API key is required (Authorization: Bearer KEY)", "authentication_error")
        from assistant.store import AuthError, Throttled

        client = request.client.host if request.client else ""
        try:
            return await run_in_threadpool(self.accounts.authenticate_key, key.strip(), client)
        except Throttled as exc:
            error = ApiError(
                429, str(exc).replace("logins", "API key attempts"), "rate_limit_error", "throttled"
            )
            error.retry_after = exc.retry_after
            raise error from None
        except AuthError:
            raise ApiError(401, "invalid API key", "authentication_error", "invalid_api_key") from None

    def router(self) -> APIRouter:
        router = APIRouter()
        router.add_api_route("/v1/models", self.models, methods=["GET"])
        router.add_api_route("/v1/chat/completions", self.completions, methods=["POST"])
        return router

    async def models(self, request: Request) -> JSONResponse:
        try:
            await self.user(request)
        except ApiError as exc:
            return exc.response()
        model = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "dl-assistant"}
        return JSONResponse({"object": "list", "data": [model]})

    async def completions(self, request: Request) -> Any:
        try:
            await self.user(request)
            st = self.settings
            data = await read_json(request, self.max_body, st.json_max_depth)
            question, history, gen = parse_chat(data, st.message_max_kb, st.max_new_tokens_limit)
            with_footer = bool(data.get("sources_footer", self.footer_default))
            model = plain(str(data.get("model") or MODEL_ID))
            stop = threading.Event()
            items = self.assistant.ask_stream(question, history, stop=stop, **gen)
            first = await self._next(items, stop)  # a bad question fails here, with a 4xx, before any byte
            if data.get("stream"):
                return StreamingResponse(
                    self._sse(first, items, stop, model, with_footer, request_id(request.scope)),
                    media_type="text/event-stream",
                    headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
                )
            answer = first if isinstance(first, Answer) else None
            while answer is None:
                item = await self._next(items, stop)
                if item is _DONE:
                    raise ApiError(500, "the answer ended without a result", "server_error")
                if isinstance(item, Answer):
                    answer = item
            self._observe(answer)
            body = self._completion(answer, model, with_footer)
            body["request_id"] = request_id(request.scope)  # as in the server log's line for it
            return JSONResponse(body)
        except ApiError as exc:
            return exc.response()
        except Exception:  # never a stack trace to the client; the log has it, under the request id
            rid = request_id(request.scope)
            log.exception("request %s: chat completion failed", rid)
            why = f"the assistant failed to answer (request {rid}); the server log says why"
            return ApiError(500, why, "server_error").response()

    def _observe(self, answer: Answer | None) -> None:
        if self.metrics is not None:
            self.metrics.answer("api", answer)

    async def _next(self, items: Iterator[Any], stop: threading.Event) -> Any:
        try:
            return await run_in_threadpool(next, items, _DONE)
        except EmptyQueryError as exc:
            raise ApiError(400, str(exc), code="empty_question") from None
        except LLMError as exc:
            self._observe(None)
            stop.set()
            raise ApiError(503, str(exc), "server_error", "model_unavailable") from None

    @staticmethod
    def _completion(answer: Answer, model: str, with_footer: bool) -> dict[str, Any]:
        text = answer.answer + (footer(answer) if with_footer else "")
        return {
            "id": f"chatcmpl-{secrets.token_hex(12)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            **extras(answer),
        }

    async def _sse(
        self, first: Any, items: Iterator[Any], stop: threading.Event, model: str, with_footer: bool, rid: str
    ) -> AsyncIterator[str]:
        """Chunks as they are generated; the last carries the sources. Citations settled after generation
        (a marker added or re-pointed) cannot be taken back from a stream: the final text is in the last
        chunk's `content_final`, and where it only extends what was streamed the rest is streamed too."""
        cid, created = f"chatcmpl-{secrets.token_hex(12)}", int(time.time())

        def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
            body = {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
                **extra,
            }
            return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

        streamed = ""
        item = first
        try:
            yield chunk({"role": "assistant", "content": ""})
            while item is not _DONE:
                if isinstance(item, Answer):
                    tail = item.answer[len(streamed) :] if item.answer.startswith(streamed) else ""
                    tail += footer(item) if with_footer else ""
                    if tail:
                        yield chunk({"content": tail})
                    self._observe(item)
                    yield chunk({}, "stop", content_final=item.answer, request_id=rid, **extras(item))
                elif isinstance(item, str) and item:
                    streamed += item
                    yield chunk({"content": item})
                item = await self._next(items, stop)
            yield "data: [DONE]\n\n"
        except ApiError as exc:  # mid-stream: the status is sent already, so the error is an event
            body = {"error": {"message": exc.message, "type": exc.kind, "param": None, "code": exc.code}}
            yield f"data: {json.dumps(body)}\n\n"
        finally:
            stop.set()  # a client that went away stops the generation at the next token


def api_router(assistant: Any, accounts: Any = None, *, auth: bool = False, metrics: Any = None) -> APIRouter:
    """The `/v1` routes; with `auth`, every request needs `Authorization: Bearer <API key>`; with
    `metrics` (web/metrics.py), answers are counted there."""
    return ChatAPI(assistant, accounts, auth=auth, metrics=metrics).router()
