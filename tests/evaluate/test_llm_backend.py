"""The shared LLM layer against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
import time

import pytest

from emollama.llm import (
    CachedBackend,
    CacheMissError,
    ChatBackend,
    LLMReplyError,
    LLMRequestError,
    LLMTimeoutError,
    OpenAICompatibleBackend,
    request_key,
)

MESSAGES = [{"role": "user", "content": "rate this"}]


def backend(server, **kw) -> OpenAICompatibleBackend:
    kw.setdefault("sleep", lambda s: None)
    return OpenAICompatibleBackend(server.url, "judge-x", api_key="k-123", **kw)


def test_canned_reply_and_request_shape(server) -> None:
    server.script = [("reply", "7; agrees")]
    reply = backend(server).complete(MESSAGES, temperature=0.0, max_tokens=64)
    assert reply.text == "7; agrees"
    assert reply.model == "judge-test-0001"  # the server-reported name, not the requested one
    assert reply.raw["choices"][0]["message"]["content"] == "7; agrees"
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions"
    assert req["auth"] == "Bearer k-123"
    assert req["body"]["model"] == "judge-x"
    assert req["body"]["temperature"] == 0.0 and req["body"]["max_tokens"] == 64
    assert req["body"]["messages"] == MESSAGES
    assert isinstance(backend(server), ChatBackend)


def test_retries_transient_errors_with_exponential_backoff(server) -> None:
    server.script = [("status", 503), ("status", 429), ("reply", "ok")]
    delays: list[float] = []
    b = backend(server, max_retries=3, backoff_s=0.5, sleep=delays.append)
    assert b.complete(MESSAGES).text == "ok"
    assert len(server.requests) == 3
    assert len(delays) == 2
    assert 0.5 <= delays[0] <= 0.55 and 1.0 <= delays[1] <= 1.1  # doubles each retry (+≤10 % jitter)


def test_gives_up_after_max_retries(server) -> None:
    server.script = [("status", 500)]
    with pytest.raises(LLMRequestError, match=r"HTTP 500.*gave up after 3 attempts"):
        backend(server, max_retries=2).complete(MESSAGES)
    assert len(server.requests) == 3


def test_client_error_is_not_retried(server) -> None:
    server.script = [("status", 401)]
    with pytest.raises(LLMRequestError, match="HTTP 401"):
        backend(server, max_retries=3).complete(MESSAGES)
    assert len(server.requests) == 1


def test_garbage_reply_is_an_error_not_text(server) -> None:
    server.script = [("garbage", None)]
    with pytest.raises(LLMReplyError, match="not JSON"):
        backend(server, max_retries=1).complete(MESSAGES)
    assert len(server.requests) == 2  # a garbled body is retried once, then reported


def test_reply_without_choices_is_an_error(server) -> None:
    server.script = [("reply", "x")]
    b = backend(server, max_retries=0)
    with pytest.raises(LLMReplyError, match="choices"):
        b._parse({"object": "list"})


def test_timeout_then_success(server) -> None:
    server.script = [("sleep", 1.0), ("reply", "fine")]
    b = backend(server, timeout_s=0.2, max_retries=1)
    assert b.complete(MESSAGES).text == "fine"


def test_timeout_exhausts_retries(server) -> None:
    server.script = [("sleep", 0.6)]
    start = time.monotonic()
    with pytest.raises(LLMTimeoutError, match="did not answer within 0.2 s"):
        backend(server, timeout_s=0.2, max_retries=1).complete(MESSAGES)
    assert time.monotonic() - start < 3


def test_unreachable_server_is_a_request_error() -> None:
    b = OpenAICompatibleBackend("http://127.0.0.1:9/v1", "m", max_retries=0, timeout_s=1)
    with pytest.raises(LLMRequestError, match="cannot reach|connection"):
        b.complete(MESSAGES)


def test_concurrency_limit_caps_in_flight_requests(server) -> None:
    in_flight = {"now": 0, "max": 0}
    lock = threading.Lock()

    def slow(body: dict) -> str:
        with lock:
            in_flight["now"] += 1
            in_flight["max"] = max(in_flight["max"], in_flight["now"])
        time.sleep(0.15)
        with lock:
            in_flight["now"] -= 1
        return "3"

    server.script = [("reply", slow)]
    b = backend(server, max_concurrency=2)
    threads = [threading.Thread(target=b.complete, args=(MESSAGES,)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(server.requests) == 6
    assert in_flight["max"] == 2


def test_cache_hits_skip_the_server_and_store_raw(server, tmp_path) -> None:
    server.script = [("reply", "8")]
    cached = CachedBackend(backend(server), tmp_path)
    first = cached.complete(MESSAGES, temperature=0.0, max_tokens=32)
    second = cached.complete(MESSAGES, temperature=0.0, max_tokens=32)
    assert (first.text, first.cached, second.text, second.cached) == ("8", False, "8", True)
    assert second.model == "judge-test-0001"
    assert len(server.requests) == 1
    key = request_key("judge-x", MESSAGES, 0.0, 32)
    entry = json.loads(cached.path_for(key).read_text())
    assert entry["text"] == "8" and entry["request"]["messages"] == MESSAGES and entry["raw"]["choices"]
    # any change to the request is a different key
    cached.complete(MESSAGES, temperature=0.0, max_tokens=33)
    assert len(server.requests) == 2


def test_cache_never_stores_errors(server, tmp_path) -> None:
    server.script = [("status", 500), ("reply", "4")]
    cached = CachedBackend(backend(server, max_retries=0), tmp_path)
    with pytest.raises(LLMRequestError):
        cached.complete(MESSAGES)
    assert not list(tmp_path.rglob("*.json"))
    assert cached.complete(MESSAGES).text == "4"
    assert len(list(tmp_path.rglob("*.json"))) == 1


def test_offline_cache_miss_raises(tmp_path, server) -> None:
    cached = CachedBackend(backend(server), tmp_path, offline=True)
    with pytest.raises(CacheMissError):
        cached.complete(MESSAGES)
    assert server.requests == []


def test_request_key_is_stable_and_sensitive() -> None:
    a = request_key("m", [{"role": "user", "content": "x"}], 0, 10)
    assert a == request_key("m", [{"content": "x", "role": "user"}], 0.0, 10)
    assert a != request_key("m2", [{"role": "user", "content": "x"}], 0, 10)
    assert a != request_key("m", [{"role": "user", "content": "y"}], 0, 10)
