"""One HTTP retry policy, seen from a real local HTTP server: 429 with ``Retry-After`` and 503 are retried
(the wait honours ``Retry-After``), other errors are not, and the attempts are bounded. Checked for the three
callers: the sync and async reward clients and the policy loop's HTTP reward."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rewardsvc.client import AsyncPrefLabRewardClient, ClientConfig, PrefLabRewardClient, RewardServerError
from training.policy.rewards import HttpReward

OK = {"rewards": [0.5], "model_version": 3, "truncated": [False]}


class ScriptedServer:
    """Answers each request with the next (status, headers) of ``script`` (then 200 with ``OK``) and
    records when each request arrived."""

    def __init__(self, script: list[tuple[int, dict[str, str]]]) -> None:
        self.script, self.arrivals = list(script), []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                self.rfile.read(int(self.headers.get("content-length") or 0))
                owner.arrivals.append(time.monotonic())
                status, headers = owner.script.pop(0) if owner.script else (200, {})
                body = json.dumps(
                    OK if status == 200 else {"error": {"message": f"status {status}"}}
                ).encode()
                self.send_response(status)
                for key, value in {"content-type": "application/json", **headers}.items():
                    self.send_header(key, value)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(request):
    srv = ScriptedServer(request.param)
    yield srv
    srv.close()


THROTTLED_THEN_DOWN = [(429, {"Retry-After": "1"}), (503, {})]
FAST = ClientConfig(backoff=0.01, max_backoff=5.0)


def _waited_for_retry_after(srv: ScriptedServer) -> None:
    assert len(srv.arrivals) == 3
    assert srv.arrivals[1] - srv.arrivals[0] >= 1.0  # Retry-After: 1 was honoured (a lower bound only)


@pytest.mark.parametrize("server", [THROTTLED_THEN_DOWN], indirect=True)
def test_sync_client_retries_429_and_503_then_succeeds(server):
    with PrefLabRewardClient(server.url, config=FAST) as client:
        result = client.score([("Hi", "Hello")])
    assert result.rewards == [0.5] and result.model_version == 3
    _waited_for_retry_after(server)


@pytest.mark.parametrize("server", [THROTTLED_THEN_DOWN], indirect=True)
def test_async_client_retries_429_and_503_then_succeeds(server):
    async def score():
        async with AsyncPrefLabRewardClient(server.url, config=FAST) as client:
            return await client.score([("Hi", "Hello")])

    assert asyncio.run(score()).rewards == [0.5]
    _waited_for_retry_after(server)


@pytest.mark.parametrize("server", [THROTTLED_THEN_DOWN], indirect=True)
def test_policy_http_reward_retries_429_and_503_then_succeeds(server):
    """It used to retry 5xx at once, without backing off, and give up on the first 429."""
    reward = HttpReward(server.url, retries=2)
    try:
        assert reward(["Hi"], ["Hello"]) == [0.5]
    finally:
        reward.close()
    _waited_for_retry_after(server)


@pytest.mark.parametrize("server", [[(400, {})]], indirect=True)
def test_a_client_error_is_not_retried(server):
    with PrefLabRewardClient(server.url, config=FAST) as client, pytest.raises(RewardServerError) as info:
        client.score([("Hi", "Hello")])
    assert info.value.status == 400 and len(server.arrivals) == 1


@pytest.mark.parametrize("server", [[(503, {})] * 10], indirect=True)
def test_attempts_are_bounded(server):
    config = ClientConfig(max_retries=2, backoff=0.01)
    with PrefLabRewardClient(server.url, config=config) as client, pytest.raises(RewardServerError) as info:
        client.score([("Hi", "Hello")])
    assert info.value.status == 503 and len(server.arrivals) == 3


def test_a_refused_connection_is_retried_then_reported():
    srv = ScriptedServer([])
    url = srv.url
    srv.close()  # nothing listens there any more
    config = ClientConfig(max_retries=1, backoff=0.01)
    with PrefLabRewardClient(url, config=config) as client, pytest.raises(RewardServerError, match="Connect"):
        client.health()
