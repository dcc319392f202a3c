"""The Redis guard (tests/guards/redis_commands.py): its rules, its recording, and a
suite it fails end to end on the real breaker and the real Redis."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from redis.asyncio import Redis

from tests.guards.redis_commands import (
    Recorder,
    SentCommand,
    command_violations,
    lua_violations,
    platform_lua_scripts,
    ttl_violations,
    written_keys,
    written_ttl_violations,
)
from xynergy.platform.config import Settings
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.rate_limit import RateLimiter
from xynergy.platform.runtime import create_redis

REPO = Path(__file__).resolve().parents[2]
CLEAN_SCRIPT = "return redis.call('GET', KEYS[1])"
KEYS_SCRIPT = "local found = redis.call('keys', ARGV[1]) return #found"


def violations(*commands: SentCommand, bounded: dict[str, str] | None = None) -> list[str]:
    scripts = {"sha-clean": CLEAN_SCRIPT, "sha-keys": KEYS_SCRIPT}
    return command_violations(commands, scripts, bounded if bounded is not None else {})


class TestCommandViolations:
    def test_keys_is_flagged(self) -> None:
        assert violations(SentCommand("KEYS", ("xyn:*",))) == [
            "KEYS 'xyn:*': use SCAN with MATCH and COUNT"
        ]

    def test_hgetall_of_an_undeclared_key_is_flagged(self) -> None:
        (problem,) = violations(SentCommand("HGETALL", (b"xyn:sessions",)))
        assert problem.startswith("HGETALL 'xyn:sessions'")

    def test_hgetall_of_a_declared_key_is_accepted(self) -> None:
        bounded = {"xyn:*:regions": "one field per configured region"}
        assert violations(SentCommand("HGETALL", ("xyn:a:regions",)), bounded=bounded) == []

    def test_whole_ranges_are_flagged_and_pages_accepted(self) -> None:
        assert violations(SentCommand("LRANGE", ("xyn:log", 0, -1)))
        assert violations(SentCommand("ZRANGE", ("xyn:board", b"0", b"-1")))
        assert violations(SentCommand("LRANGE", ("xyn:log", 0, 99))) == []

    def test_scan_get_and_a_clean_evalsha_are_accepted(self) -> None:
        assert (
            violations(
                SentCommand("SCAN", (0, "MATCH", "xyn:*", "COUNT", 500)),
                SentCommand("GET", ("xyn:a",)),
                SentCommand("EVALSHA", ("sha-clean", 1, "xyn:a")),
            )
            == []
        )

    def test_a_script_calling_keys_is_flagged_by_sha_and_by_source(self) -> None:
        assert violations(SentCommand("EVALSHA", ("sha-keys", 0, "xyn:*")))
        (problem,) = violations(SentCommand("EVAL", ("redis.call('SMEMBERS', KEYS[1])", 1, "k")))
        assert "SMEMBERS" in problem

    def test_each_problem_is_listed_once(self) -> None:
        assert len(violations(*[SentCommand("KEYS", ("xyn:*",))] * 3)) == 1


class TestTtlViolations:
    def test_a_key_without_ttl_is_flagged(self) -> None:
        (problem,) = ttl_violations({"xyn:a": -1, "xyn:b": 30, "xyn:gone": -2}, {})
        assert problem.startswith("'xyn:a' has no TTL")

    def test_a_declared_key_may_live_without_ttl(self) -> None:
        assert ttl_violations({"xyn:t:events": -1}, {"xyn:*:events": "XADD MAXLEN ~ 1000"}) == []


class TestWrittenTtlViolations:
    def test_a_key_deleted_before_the_end_but_written_without_ttl_is_flagged(self) -> None:
        commands = [SentCommand("SET", ("xyn:ticket", "r")), SentCommand("GETDEL", ("xyn:ticket",))]
        (problem,) = written_ttl_violations(commands, {"xyn:ticket": -2}, {})
        assert problem.startswith("'xyn:ticket' was written with no TTL")

    def test_a_key_given_an_expiry_by_any_command_is_accepted(self) -> None:
        commands = [
            SentCommand("SET", ("a", "v", "EX", 60)),
            SentCommand("INCR", ("b",)),
            SentCommand("EXPIRE", ("b", 60)),
            SentCommand("EVALSHA", ("sha", 1, "c", 5)),  # a script may expire its keys itself
        ]
        assert written_ttl_violations(commands, {"a": -2, "b": -2, "c": -2}, {}) == []

    def test_a_key_still_without_ttl_is_flagged_once(self) -> None:
        commands = [SentCommand("HSET", ("xyn:h", "f", "v"))]
        assert len(written_ttl_violations(commands, {"xyn:h": -1}, {})) == 1


class TestWrittenKeys:
    def test_keys_of_writes_and_scripts(self) -> None:
        assert written_keys(SentCommand("SET", ("k", "v", "EX", 5))) == ["k"]
        assert written_keys(SentCommand("MSET", ("a", 1, "b", 2))) == ["a", "b"]
        assert written_keys(SentCommand("EVALSHA", ("sha", 2, "a", "b", "arg"))) == ["a", "b"]
        assert written_keys(SentCommand("GET", ("k",))) == []


class TestLuaScripts:
    def test_forbidden_calls_are_named(self) -> None:
        assert lua_violations(KEYS_SCRIPT) == ["calls KEYS (use SCAN)"]
        assert lua_violations("redis.call('HGETALL', KEYS[1])")
        assert lua_violations("redis.pcall('LRANGE', KEYS[1], 0, -1)")
        assert lua_violations("redis.call('LRANGE', KEYS[1], 0, 9)") == []

    def test_the_platforms_scripts_are_found_and_clean(self) -> None:
        scripts = platform_lua_scripts()
        # The budget reservation and the shared flight's finish, release and renew.
        assert len(scripts) >= 4
        assert {sha: lua_violations(source) for sha, source in scripts.items()} == dict.fromkeys(
            scripts, []
        )


class TestRecording:
    async def test_records_the_platforms_commands_not_the_tests_own(
        self, redis_url: str, redis_prefix: str
    ) -> None:
        settings = Settings(environment="test", redis_url=redis_url, redis_key_prefix=redis_prefix)
        recorder = Recorder()
        undo = recorder.install()
        redis: Redis | None = None
        try:
            redis = create_redis(settings)
            assert redis is not None
            limiter = RateLimiter(settings, redis, PlatformMetrics())
            await limiter.hit("public", "10.0.0.1", service="test")
            await redis.set(redis_prefix + "probe", "1", ex=60)  # the test's own: not recorded
        finally:
            undo()
            if redis is not None:
                await redis.aclose()
        (hit,) = recorder.commands
        assert hit.name == "EVALSHA"
        assert hit.args[0] in recorder.scripts  # limits' script, registered in process
        assert written_keys(hit)[0].startswith(redis_prefix + "rl")


# A suite of three tests on the platform's circuit breakers with Redis; the guard
# must pass the first and fail the other two at teardown.
INNER_SUITE = """
import asyncio
import contextlib

from redis.asyncio.client import Pipeline

from tests.conftest import redis_prefix, redis_url  # noqa: F401 - hooked by the guard
from xynergy.platform.breaker import Breakers, UpstreamFailure, _RedisBreakerRepository
from xynergy.platform.config import Settings
from xynergy.platform.monitoring import PlatformMetrics
from xynergy.platform.runtime import create_redis


def open_a_breaker(url, prefix):
    async def run():
        settings = Settings(
            environment="test", redis_url=url, redis_key_prefix=prefix, breaker_failure_threshold=2
        )
        redis = create_redis(settings)
        try:
            breakers = Breakers(settings, PlatformMetrics(), redis)
            for _ in range(2):
                with contextlib.suppress(UpstreamFailure):
                    async with breakers.guard("webhook", "t:http://[10.9.8.7]:8080"):
                        raise UpstreamFailure("a 503")
            assert await breakers.state("webhook", "t:http://[10.9.8.7]:8080") == "opened"
        finally:
            await redis.aclose()

    asyncio.run(run())


def test_as_written(redis_url, redis_prefix):
    open_a_breaker(redis_url, redis_prefix)


def test_reading_with_keys(redis_url, redis_prefix, monkeypatch):
    original = _RedisBreakerRepository.get

    async def get_after_keys(self, name):
        await self.redis.keys(self.prefix + "*")
        return await original(self, name)

    monkeypatch.setattr(_RedisBreakerRepository, "get", get_after_keys)
    open_a_breaker(redis_url, redis_prefix)


def test_counting_failures_without_expire(redis_url, redis_prefix, monkeypatch):
    monkeypatch.setattr(Pipeline, "expire", lambda pipe, *args, **kwargs: pipe)
    open_a_breaker(redis_url, redis_prefix)
"""


class TestEndToEnd:
    def test_the_guard_fails_a_suite_whose_breaker_sends_keys_or_drops_expire(
        self, redis_url: str, tmp_path: Path
    ) -> None:
        (tmp_path / "test_inner.py").write_text(textwrap.dedent(INNER_SUITE))
        (tmp_path / "pytest.ini").write_text(
            "[pytest]\nasyncio_default_fixture_loop_scope = function\n"
            "markers =\n    postgres: -\n    redis: -\n"
        )
        environment = {
            **os.environ,
            "CI": "true",
            "PYTHONPATH": str(REPO),
            "XYNERGY_TEST_REDIS_URL": redis_url,
        }
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:xdist"]
        command += ["-p", "no:cacheprovider", "-p", "tests.guards.redis_commands", "test_inner.py"]
        run = subprocess.run(  # noqa: S603 - our interpreter, our arguments
            command, cwd=tmp_path, env=environment, capture_output=True, text=True, timeout=120
        )
        output = run.stdout + run.stderr
        assert run.returncode == 1, output
        assert "3 passed, 2 errors in" in output, output
        assert "ERROR at teardown of test_reading_with_keys" in output
        assert "ERROR at teardown of test_counting_failures_without_expire" in output
        assert "KEYS 'xyn:test:" in output
        assert ":failures' has no TTL" in output
        assert "test_as_written" not in output.split("short test summary")[-1]
