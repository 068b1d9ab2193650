"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, llama.cpp server, Ollama, LM Studio ...).

Requests go to ``{base_url}/chat/completions`` over httpx. Transient failures (timeouts, refused
connections, 408/409/425/429 and 5xx) are retried with exponential backoff and jitter, waiting
what the server's ``Retry-After`` asks when it sends one; other failures are permanent. At most
``settings.concurrency`` requests are in flight per adapter, whichever method sends them. The API
key is sent as a bearer token and never logged, nor included in any error message.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import httpx
import tenacity

from aiw.errors import ConfigError, InvalidInputError, PermanentBackendError, TransientBackendError
from aiw.providers.llm import Message, check_messages, check_prompts
from aiw.settings import LLMSettings

__all__ = ["OpenAICompatibleLLM"]

log = logging.getLogger(__name__)

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})


class _RetryableError(TransientBackendError):
    """A transient failure of one attempt, with the wait the server asked for (if any)."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class OpenAICompatibleLLM:
    """The :class:`~aiw.providers.llm.LLM` over an OpenAI-compatible ``/chat/completions`` endpoint.

    Args:
        settings: The llm section: ``base_url`` (required), ``api_key``, ``model``, ``timeout_s``,
            ``max_retries``, ``backoff_s``, ``backoff_max_s``, ``concurrency``, ``temperature``,
            ``max_tokens``.
        transport: An httpx transport to use instead of the network (tests, proxies).

    Raises:
        ConfigError: ``base_url`` is empty or not an http(s) URL.
    """

    def __init__(self, settings: LLMSettings, *, transport: httpx.BaseTransport | None = None) -> None:
        if not settings.base_url.strip():
            raise ConfigError(
                "The openai LLM adapter needs an endpoint: AIW_LLM__BASE_URL is empty",
                hint="set AIW_LLM__BASE_URL, e.g. http://127.0.0.1:8000/v1",
            )
        url = httpx.URL(settings.base_url.strip())
        if url.scheme not in ("http", "https") or not url.host:
            raise ConfigError(
                f"AIW_LLM__BASE_URL must be an http(s) URL like http://127.0.0.1:8000/v1. "
                f"Got {settings.base_url!r} instead."
            )
        self.settings = settings
        self.base_url = str(url).rstrip("/")
        self.model = settings.model or "default"
        self.model_id = settings.model or self.base_url
        self._key = settings.api_key.get_secret_value()
        self._transport = transport
        self._slots = threading.BoundedSemaphore(settings.concurrency)
        self._lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._pid = -1

    @property
    def generative(self) -> bool:
        """Always ``True``."""
        return True

    # -- plumbing ---------------------------------------------------------------------------------
    def _http(self) -> httpx.Client:
        if self._client is None or self._pid != os.getpid():  # never share a connection pool across fork
            with self._lock:
                if self._client is None or self._pid != os.getpid():
                    headers = {"Accept": "application/json"}
                    if self._key:
                        headers["Authorization"] = f"Bearer {self._key}"
                    n = self.settings.concurrency
                    self._client = httpx.Client(
                        base_url=self.base_url + "/",
                        headers=headers,
                        transport=self._transport,
                        timeout=httpx.Timeout(self.settings.timeout_s),
                        limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
                    )
                    self._executor = None
                    self._pid = os.getpid()
        return self._client

    def _pool(self) -> ThreadPoolExecutor:
        self._http()
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=self.settings.concurrency, thread_name_prefix="aiw-llm")
            return self._executor

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _payload(
        self, messages: list[Message], temperature: float | None, max_tokens: int | None, stream: bool = False
    ) -> dict[str, Any]:
        temp = self.settings.temperature if temperature is None else temperature
        tokens = self.settings.max_tokens if max_tokens is None else max_tokens
        if not isinstance(temp, int | float) or isinstance(temp, bool) or not 0 <= temp <= 2:
            raise InvalidInputError(
                f"The 'temperature' parameter of OpenAICompatibleLLM must be a number in [0, 2]. Got {temp!r} instead."
            )
        if not isinstance(tokens, int) or isinstance(tokens, bool) or tokens < 1:
            raise InvalidInputError(
                f"The 'max_tokens' parameter of OpenAICompatibleLLM must be an int >= 1. Got {tokens!r} instead."
            )
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": float(temp),
            "max_tokens": tokens,
        }
        if stream:
            payload["stream"] = True
        return payload

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if status < 400:
            return
        try:
            text = response.text
        except httpx.ResponseNotRead:
            text = ""
        try:
            detail: Any = json.loads(text)
            detail = detail.get("error", detail) if isinstance(detail, dict) else detail
            if isinstance(detail, dict):
                detail = detail.get("message", detail)
            text = str(detail)
        except json.JSONDecodeError:
            pass  # not JSON: show the body as it is
        text = self._redact(" ".join(text.split())[:300])
        where = f"The LLM endpoint {self.base_url}"
        if status in (401, 403):
            raise PermanentBackendError(
                f"{where} refused the API key (HTTP {status}): {text}",
                hint="check AIW_LLM__API_KEY (and that the key may use AIW_LLM__MODEL)",
            )
        if status in _TRANSIENT_STATUS or status >= 500:
            raise _RetryableError(
                f"{where} answered HTTP {status}: {text}",
                status=status,
                retry_after=_retry_after(response.headers.get("retry-after")),
            )
        if status == 404:
            raise PermanentBackendError(
                f"{where} answered HTTP 404 for chat/completions: {text}",
                hint="check AIW_LLM__BASE_URL (usually ends in /v1) and AIW_LLM__MODEL",
            )
        raise PermanentBackendError(
            f"{where} rejected the request (HTTP {status}): {text}",
            hint="check AIW_LLM__MODEL and the prompt size against the model's context",
        )

    def _transport_error(self, exc: httpx.HTTPError) -> TransientBackendError:
        if isinstance(exc, httpx.TimeoutException):
            return _RetryableError(
                f"The LLM endpoint {self.base_url} did not answer within "
                f"{self.settings.timeout_s:g} s ({type(exc).__name__})"
            )
        return _RetryableError(
            f"Cannot reach the LLM endpoint {self.base_url}: {self._redact(str(exc)) or type(exc).__name__}"
        )

    def _wait(self, state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        asked = getattr(exc, "retry_after", None)
        if asked is not None:
            return float(min(asked, self.settings.backoff_max_s))
        base = self.settings.backoff_s
        return float(
            tenacity.wait_exponential_jitter(initial=base, max=self.settings.backoff_max_s, jitter=base)(state)
        )

    def _retrying(self, call: Any, *args: Any) -> Any:
        attempts = self.settings.max_retries + 1

        def before_sleep(state: tenacity.RetryCallState) -> None:
            exc = state.outcome.exception() if state.outcome is not None else None
            wait = state.next_action.sleep if state.next_action is not None else 0.0
            log.warning(
                "LLM request failed (%s); retry %d of %d in %.2f s", exc, state.attempt_number, attempts - 1, wait
            )

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(attempts),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(_RetryableError),
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return retrying(call, *args)
        except _RetryableError as exc:
            # Drop the retry-specific subclass: callers see a plain TransientBackendError.
            raise TransientBackendError(
                f"{exc.message} (gave up after {attempts} attempt{'s' if attempts != 1 else ''})",
                hint="the endpoint may be overloaded or down; try again later or raise "
                "AIW_LLM__TIMEOUT_S / AIW_LLM__MAX_RETRIES",
            ) from exc

    def _post_once(self, payload: dict[str, Any]) -> dict[str, Any]:
        client = self._http()
        with self._slots:
            try:
                response = client.post("chat/completions", json=payload)
            except httpx.HTTPError as exc:
                raise self._transport_error(exc) from exc
        self._check(response)
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise PermanentBackendError(
                f"The LLM endpoint {self.base_url} answered with invalid JSON: {self._redact(response.text[:200])!r}"
            ) from exc
        if not isinstance(data, dict):
            raise PermanentBackendError(
                f"The LLM endpoint {self.base_url} answered with {type(data).__name__}, not a chat completion object"
            )
        return data

    def _content(self, data: dict[str, Any]) -> str:
        try:
            content = data["choices"][0]["message"].get("content")
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise PermanentBackendError(
                f"The LLM endpoint {self.base_url} answered without choices[0].message: {self._redact(str(data)[:200])}"
            ) from exc
        return "" if content is None else str(content)

    def _ask(self, payload: dict[str, Any]) -> str:
        return self._content(self._retrying(self._post_once, payload))

    # -- the LLM port ------------------------------------------------------------------------------
    def complete(
        self,
        prompts: Sequence[str],
        *,
        system: str | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> list[str]:
        """One answer per prompt, in order, with up to ``concurrency`` requests in flight.

        If one prompt fails (after its retries), the pending ones are cancelled and the error
        is raised.
        """
        items = check_prompts(prompts, type(self).__name__)
        if system is not None and not isinstance(system, str):
            raise InvalidInputError(
                f"The 'system' parameter of OpenAICompatibleLLM.complete must be a string. "
                f"Got {type(system).__name__} instead."
            )
        head: list[Message] = [{"role": "system", "content": system}] if system else []
        payloads = [self._payload([*head, {"role": "user", "content": p}], temperature, max_tokens) for p in items]
        if len(payloads) <= 1:
            return [self._ask(p) for p in payloads]
        pool = self._pool()
        futures: list[Future[str]] = [pool.submit(self._ask, p) for p in payloads]
        try:
            return [f.result() for f in futures]
        except BaseException:
            for f in futures:
                f.cancel()
            raise

    def chat(self, messages: list[Message], *, temperature: float | None = None, max_tokens: int | None = None) -> str:
        """The assistant's answer to ``messages``."""
        msgs = check_messages(messages, f"{type(self).__name__}.chat")
        return self._ask(self._payload(msgs, temperature, max_tokens))

    def _open_stream(self, payload: dict[str, Any]) -> httpx.Response:
        client = self._http()
        try:
            request = client.build_request(
                "POST", "chat/completions", json=payload, headers={"Accept": "text/event-stream"}
            )
            response = client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise self._transport_error(exc) from exc
        if response.status_code >= 400:
            try:
                response.read()
            except httpx.HTTPError as exc:
                response.close()
                raise self._transport_error(exc) from exc
            response.close()
            self._check(response)
        return response

    def stream_chat(
        self, messages: list[Message], *, temperature: float | None = None, max_tokens: int | None = None
    ) -> Iterator[str]:
        """The answer as server-sent-event chunks (``stream: true``).

        Opening the stream is retried like any request; a failure after the first chunk is
        raised as it happens (a partial answer cannot be retried transparently).
        """
        msgs = check_messages(messages, f"{type(self).__name__}.stream_chat")
        payload = self._payload(msgs, temperature, max_tokens, stream=True)
        with self._slots:
            response = self._retrying(self._open_stream, payload)
            try:
                yield from self._events(response)
            except httpx.HTTPError as exc:
                raise TransientBackendError(
                    f"The LLM stream from {self.base_url} broke off: {self._transport_error(exc).message}"
                ) from exc
            finally:
                response.close()

    def _events(self, response: httpx.Response) -> Iterator[str]:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, comments (":"), event/id fields
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                event = json.loads(data)
            except json.JSONDecodeError as exc:
                raise PermanentBackendError(
                    f"The LLM endpoint {self.base_url} sent a malformed stream event: {self._redact(data[:200])!r}"
                ) from exc
            if isinstance(event, dict) and event.get("error"):
                raise PermanentBackendError(
                    f"The LLM endpoint {self.base_url} failed mid-stream: {self._redact(str(event['error'])[:300])}"
                )
            try:
                choices = event.get("choices") or []
                piece = choices[0].get("delta", {}).get("content") if choices else None
            except (AttributeError, IndexError, TypeError) as exc:
                raise PermanentBackendError(
                    f"The LLM endpoint {self.base_url} sent an unexpected stream event: {self._redact(data[:200])!r}"
                ) from exc
            if piece:
                yield str(piece)

    def close(self) -> None:
        """Close the connection pool and the worker threads."""
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = None
            if self._client is not None and self._pid == os.getpid():
                self._client.close()
            self._client = None

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAICompatibleLLM(base_url={self.base_url!r}, model={self.model!r})"
