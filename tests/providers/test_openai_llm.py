"""The OpenAI-compatible adapter against a real local HTTP server speaking the protocol."""

from __future__ import annotations

import logging
import random
import socket
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from aiw.errors import ConfigError, InvalidInputError, PermanentBackendError, TransientBackendError
from aiw.providers.adapters.openai_compatible import OpenAICompatibleLLM
from aiw.providers.llm import CachedLLM, get_llm
from aiw.settings import LLMSettings
from aiw.testing.openai_server import ChatRequest, Reply, echo, scripted, serve_openai

pytestmark = pytest.mark.integration

KEY = "sk-test-5f3a9c1e7b2d4680"
USER = [{"role": "user", "content": "hi"}]


def make(base_url: str, **overrides: object) -> OpenAICompatibleLLM:
    values: dict[str, object] = {
        "adapter": "openai",
        "base_url": base_url,
        "api_key": SecretStr(KEY),
        "model": "fake-model",
        "backoff_s": 0.01,
        "backoff_max_s": 0.5,
        "timeout_s": 5.0,
    }
    values.update(overrides)
    return OpenAICompatibleLLM(LLMSettings(**values))


def test_chat_sends_the_model_parameters_and_bearer_key() -> None:
    with serve_openai() as url:
        llm = make(url)
        assert llm.complete(["ping"], system="be brief") == ["echo: ping"]
        request = url.server.requests[0]
        assert request.headers["authorization"] == f"Bearer {KEY}"
        assert request.body["model"] == "fake-model"
        assert request.body["temperature"] == 0.0  # deterministic by default
        assert request.body["max_tokens"] == 512
        assert request.system == "be brief"
        assert llm.chat(USER, temperature=0.7, max_tokens=9) == "echo: hi"
        assert (url.server.requests[1].body["temperature"], url.server.requests[1].body["max_tokens"]) == (0.7, 9)
        assert llm.generative is True


@pytest.mark.parametrize(
    "failure",
    [Reply(status=429, headers={"Retry-After": "0"}), Reply(status=500), Reply(status=503), Reply(status=502)],
)
def test_transient_failures_are_retried(failure: Reply) -> None:
    with serve_openai(scripted(failure)) as url:
        assert make(url).chat(USER) == "echo: hi"
        assert url.server.request_count == 2


def test_retry_after_is_honoured() -> None:
    with serve_openai(scripted(Reply(status=429, headers={"Retry-After": "0.6"}))) as url:
        llm = make(url, backoff_s=0.0, backoff_max_s=5.0)
        started = time.perf_counter()
        assert llm.chat(USER) == "echo: hi"
        assert time.perf_counter() - started >= 0.6
        assert url.server.request_count == 2


def test_gives_up_after_max_retries_with_a_transient_error() -> None:
    with serve_openai(lambda request: Reply(status=503, error_message="overloaded")) as url:
        with pytest.raises(TransientBackendError, match=r"HTTP 503: overloaded .*gave up after 3 attempts"):
            make(url, max_retries=2).chat(USER)
        assert url.server.request_count == 3


def test_timeout_is_a_transient_error_naming_the_limit() -> None:
    with serve_openai(lambda request: Reply(content="late", delay_s=1.5)) as url:
        started = time.perf_counter()
        with pytest.raises(TransientBackendError, match=r"did not answer within 0.3 s"):
            make(url, timeout_s=0.3, max_retries=1).chat(USER)
        assert time.perf_counter() - started < 1.5
        assert url.server.request_count == 2


def test_unauthorised_is_permanent_names_the_setting_and_never_shows_the_key(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    leaky = Reply(status=401, error_message=f"Incorrect API key provided: {KEY}")
    with serve_openai(lambda request: leaky) as url:
        llm = make(url)
        with pytest.raises(PermanentBackendError) as info:
            llm.chat(USER)
        assert url.server.request_count == 1  # not retried
    text = f"{info.value} {info.value!r} {info.value.__cause__!r} {llm!r}"
    assert "AIW_LLM__API_KEY" in str(info.value)
    assert KEY not in text
    assert "***" in str(info.value)
    assert KEY not in caplog.text


def test_key_never_logged_through_retries_and_streams(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with serve_openai(scripted(Reply(status=500, error_message=f"boom {KEY}"), Reply(status=429))) as url:
        llm = make(url)
        assert llm.chat(USER) == "echo: hi"
        assert "".join(llm.stream_chat(USER)) == "echo: hi"
    assert "LLM request failed" in caplog.text  # retries are logged ...
    assert KEY not in caplog.text  # ... without the key


def test_other_client_errors_are_permanent_and_not_retried() -> None:
    with serve_openai(lambda request: Reply(status=400, error_message="context too long")) as url:
        with pytest.raises(PermanentBackendError, match="context too long"):
            make(url).chat(USER)
        assert url.server.request_count == 1
    with (
        serve_openai(lambda request: Reply(raw_body=b"not json")) as url,
        pytest.raises(PermanentBackendError, match="invalid JSON"),
    ):
        make(url).chat(USER)


def test_unreachable_endpoint_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientBackendError, match="Cannot reach the LLM endpoint"):
        make(f"http://127.0.0.1:{port}/v1", max_retries=1).chat(USER)


def test_concurrency_is_bounded_and_batched_results_keep_their_order() -> None:
    rng = random.Random(0)
    delays: list[float] = []

    def slow_echo(request: ChatRequest) -> Reply:
        delays.append(rng.uniform(0.1, 0.4))  # random: answers complete out of order
        return Reply(content=f"answer to {request.last_user}", delay_s=delays[-1])

    prompts = [f"prompt {i}" for i in range(16)]
    with serve_openai(slow_echo) as url:
        llm = make(url, concurrency=3)
        started = time.perf_counter()
        answers = llm.complete(prompts)
        elapsed = time.perf_counter() - started
        assert answers == [f"answer to {p}" for p in prompts]
        assert url.server.max_in_flight == 3
        assert elapsed < 0.75 * sum(delays)  # really concurrent: well under the serial time
        llm.close()


def test_a_failing_prompt_fails_the_batch() -> None:
    def picky(request: ChatRequest) -> Reply:
        return Reply(status=400, error_message="bad prompt") if request.last_user == "p3" else echo(request)

    with serve_openai(picky) as url, pytest.raises(PermanentBackendError, match="bad prompt"):
        make(url, concurrency=2).complete([f"p{i}" for i in range(6)])


def test_streaming_yields_the_server_chunks() -> None:
    chunks = ["The ", "claim ", "is ", "appro", "ved."]
    with serve_openai(lambda request: Reply(content="".join(chunks), chunks=chunks)) as url:
        llm = make(url)
        assert list(llm.stream_chat(USER)) == chunks
        assert url.server.requests[0].stream
        assert llm.chat(USER) == "The claim is approved."


def test_streaming_retries_before_the_first_chunk() -> None:
    with serve_openai(scripted(Reply(status=503))) as url:
        assert "".join(make(url).stream_chat([{"role": "user", "content": "a b c"}])) == "echo: a b c"
        assert url.server.request_count == 2


def test_bad_arguments_are_refused() -> None:
    with serve_openai() as url:
        llm = make(url)
        with pytest.raises(InvalidInputError, match="'temperature'"):
            llm.chat(USER, temperature=3.0)
        with pytest.raises(InvalidInputError, match="message 0"):
            llm.chat([{"role": "robot", "content": "x"}])
        with pytest.raises(InvalidInputError, match="not one string"):
            llm.complete("one prompt")
        assert url.server.request_count == 0


def test_cached_llm_answers_repeats_without_the_server(tmp_path: Path) -> None:
    with serve_openai() as url:
        settings = LLMSettings(adapter="openai", base_url=url, model="fake-model", backoff_s=0.01)
        llm = get_llm(settings, tmp_path)
        assert isinstance(llm, CachedLLM)
        assert llm.complete(["a", "b", "a"]) == ["echo: a", "echo: b", "echo: a"]
        assert url.server.request_count == 2  # "a" asked once
        assert llm.complete(["b", "a"]) == ["echo: b", "echo: a"]
        assert url.server.request_count == 2
        # another object (as another process would) reads the same file
        assert get_llm(settings, tmp_path).complete(["a"], temperature=0.0) == ["echo: a"]
        assert url.server.request_count == 2
        # different parameters are a different entry
        llm.complete(["a"], temperature=0.5)
        llm.complete(["a"], max_tokens=7)
        llm.complete(["a"], system="you are terse")
        assert url.server.request_count == 5
        # chat and stream share entries
        assert llm.chat(USER) == "echo: hi"
        assert "".join(llm.stream_chat(USER)) == "echo: hi"
        assert url.server.request_count == 6
        assert llm.generative


def test_get_llm_errors_name_the_setting() -> None:
    with pytest.raises(ConfigError, match="'no-such-adapter'"):
        get_llm(LLMSettings(adapter="no-such-adapter"))
    with pytest.raises(ConfigError, match="AIW_LLM__BASE_URL"):
        get_llm(LLMSettings(adapter="openai"))
    with pytest.raises(ConfigError, match="AIW_LLM__BASE_URL must be an http"):
        get_llm(LLMSettings(adapter="openai", base_url="ftp://example"))
    with pytest.raises(ConfigError, match="AIW_LLM__MODEL_PATH"):
        get_llm(LLMSettings(adapter="transformers"))
