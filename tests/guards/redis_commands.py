"""Invariant 9 over the whole suite: Redis, SCAN never KEYS; every key a TTL or a bound.

While each test runs, the commands the platform's code sends to Redis are
recorded (redis-py's asyncio ``pack_command``: pipelines, transactions and Lua
calls go through it too). At teardown, once every fixture is torn down, the test
fails when:

* the platform sent KEYS, or ran a Lua script that calls KEYS;
* it read a whole collection (SMEMBERS, HGETALL, HKEYS, HVALS, LRANGE/ZRANGE/
  ZREVRANGE 0 -1, or such a call in a Lua script it ran) of a key not declared
  in ``BOUNDED_KEYS``;
* a key it wrote during the test, or any key under the test's ``redis_prefix``
  (checked just before that fixture deletes them), has no TTL and is not
  declared in ``BOUNDED_KEYS``; or a key it wrote with a plain command (not a
  script) is gone at the end but no command of the test gave it an expiry (a
  lock or ticket deleted after use still lives forever if its process dies).

Whose commands count: those whose call stack passes through ``src/xynergy``.
The suite's own Redis traffic (``redis_prefix``'s SCAN + DEL cleanup, the sync
probes of ``redis_url``, a test's ``scan_iter``/``ttl`` in its assertions) never
does, so it needs no allowlist; a monkeypatched replacement that platform code
calls does count, which is how ``test_redis_commands.py`` proves the guard fails.
Redis traffic of server subprocesses (``tests/live_server.py``) is not seen.
"""

from __future__ import annotations

import ast
import fnmatch
import hashlib
import re
import sys
from collections.abc import Callable, Generator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import pytest
import redis as redis_sync
from redis.asyncio.connection import AbstractConnection
from redis.commands.core import AsyncScript

import xynergy

__all__ = [
    "BOUNDED_KEYS",
    "command_violations",
    "expiring_keys",
    "lua_violations",
    "platform_lua_scripts",
    "Recorder",
    "SentCommand",
    "ttl_violations",
    "written_keys",
    "written_ttl_violations",
]

# Keys that may be read whole or live without a TTL, as fnmatch patterns over the
# full key, each with why it cannot grow (e.g. a stream trimmed with MAXLEN).
# Empty: every key the platform writes expires, and it reads no collection whole.
BOUNDED_KEYS: dict[str, str] = {}

PLATFORM_SOURCE = Path(xynergy.__file__).parent
_PLATFORM_PREFIX = str(PLATFORM_SOURCE) + "/"

_WHOLE_READS = frozenset({"SMEMBERS", "HGETALL", "HKEYS", "HVALS"})
_RANGE_READS = frozenset({"LRANGE", "ZRANGE", "ZREVRANGE"})
_SCRIPTS = frozenset({"EVAL", "EVALSHA", "EVAL_RO", "EVALSHA_RO"})
# Commands that create or grow a key: the key is TTL-checked after the test.
_WRITES = frozenset(
    {
        "SET", "SETNX", "SETEX", "PSETEX", "GETSET", "SETRANGE", "APPEND", "MSET", "MSETNX",
        "INCR", "INCRBY", "INCRBYFLOAT", "DECR", "DECRBY", "PERSIST", "SETBIT", "BITFIELD",
        "HSET", "HSETNX", "HMSET", "HINCRBY", "HINCRBYFLOAT",
        "SADD", "LPUSH", "RPUSH", "LPUSHX", "RPUSHX", "LINSERT", "LSET",
        "ZADD", "ZINCRBY", "XADD", "PFADD", "GEOADD", "COPY", "RENAME", "RENAMENX",
    }
)  # fmt: skip
# Commands that give a key an expiry (SET's own options are read from its arguments).
_EXPIRES = frozenset({"SETEX", "PSETEX", "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT", "GETEX"})
_EXPIRY_OPTIONS = frozenset({"EX", "PX", "EXAT", "PXAT"})
_WATCHED = _WRITES | _EXPIRES | _SCRIPTS | _WHOLE_READS | _RANGE_READS | {"KEYS"}

_LUA_CALL = re.compile(r"""redis\.p?call\(\s*(['"])(\w+)\1([^)]*)\)""", re.IGNORECASE)
_LUA_WHOLE_RANGE = re.compile(r"""^\s*,[^,]+,\s*['"]?0['"]?\s*,\s*['"]?-1['"]?\s*$""")


class Endpoint(NamedTuple):
    host: str
    port: int
    db: int


class SentCommand(NamedTuple):
    """One command as the platform packed it: name upper-cased, arguments raw."""

    name: str
    args: tuple[Any, ...]
    endpoint: Endpoint | None = None


def _text(value: Any) -> str:
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).decode("utf-8", "replace")
    return str(value)


def _declared(key: str, bounded: Mapping[str, str]) -> bool:
    return any(fnmatch.fnmatchcase(key, pattern) for pattern in bounded)


def lua_violations(source: str) -> list[str]:
    """What a Lua script calls that invariant 9 forbids (its keys are unknown here)."""
    problems = []
    for match in _LUA_CALL.finditer(source):
        name, rest = match.group(2).upper(), match.group(3)
        if name == "KEYS":
            problems.append("calls KEYS (use SCAN)")
        elif name in _WHOLE_READS:
            problems.append(f"calls {name} (reads a whole collection)")
        elif name in _RANGE_READS and _LUA_WHOLE_RANGE.match(rest):
            problems.append(f"calls {name} 0 -1 (reads a whole collection)")
    return problems


def command_violations(
    commands: Iterable[SentCommand],
    scripts: Mapping[str, str],
    bounded: Mapping[str, str] = BOUNDED_KEYS,
) -> list[str]:
    """KEYS, whole reads of undeclared keys, and scripts doing either; each once."""
    problems: list[str] = []
    for command in commands:
        name, args = command.name, command.args
        key = _text(args[0]) if args else ""
        if name == "KEYS":
            problems.append(f"KEYS {key!r}: use SCAN with MATCH and COUNT")
        elif name in _WHOLE_READS and not _declared(key, bounded):
            problems.append(f"{name} {key!r}: whole read of a key not in BOUNDED_KEYS")
        elif (
            name in _RANGE_READS
            and [_text(a) for a in args[1:3]] == ["0", "-1"]
            and not _declared(key, bounded)
        ):
            problems.append(f"{name} {key!r} 0 -1: whole read of a key not in BOUNDED_KEYS")
        elif name in _SCRIPTS:
            source = key if name.startswith("EVAL") and "SHA" not in name else scripts.get(key)
            digest = hashlib.sha1(source.encode()).hexdigest() if source else key  # noqa: S324
            for problem in lua_violations(source or ""):
                problems.append(f"{name} script {digest[:12]}: {problem}")
    return list(dict.fromkeys(problems))


def ttl_violations(ttls: Mapping[str, int], bounded: Mapping[str, str] = BOUNDED_KEYS) -> list[str]:
    """Keys that never expire (TTL -1) and are not declared bounded."""
    return [
        f"{key!r} has no TTL: write it with EX/PX or EXPIRE it, or declare it in BOUNDED_KEYS"
        for key, ttl in sorted(ttls.items())
        if ttl == -1 and not _declared(key, bounded)
    ]


def written_keys(command: SentCommand) -> list[str]:
    """The keys a recorded command creates or grows (a script's: all it declares)."""
    args = command.args
    if command.name in {"MSET", "MSETNX"}:
        return [_text(key) for key in args[0::2]]
    if command.name in _SCRIPTS:
        return [_text(key) for key in args[2 : 2 + int(_text(args[1]))]]
    if command.name in _WRITES and args:
        return [_text(args[1] if command.name in {"COPY", "RENAME", "RENAMENX"} else args[0])]
    return []


def expiring_keys(command: SentCommand) -> list[str]:
    """The key a recorded command gives an expiry, if it does."""
    args = command.args
    if command.name == "SET" and any(_text(a).upper() in _EXPIRY_OPTIONS for a in args[2:]):
        return [_text(args[0])]
    if command.name == "GETEX" and len(args) > 1 and _text(args[1]).upper() in _EXPIRY_OPTIONS:
        return [_text(args[0])]
    if command.name in _EXPIRES - {"GETEX"} and args:
        return [_text(args[0])]
    return []


def written_ttl_violations(
    commands: Iterable[SentCommand],
    ttls: Mapping[str, int],
    bounded: Mapping[str, str] = BOUNDED_KEYS,
) -> list[str]:
    """Written keys without a TTL now, or gone now but written with none ever given."""
    plain: set[str] = set()
    given_expiry: set[str] = set()
    for command in commands:
        given_expiry.update(expiring_keys(command))
        if command.name not in _SCRIPTS:  # a script may expire its keys itself
            plain.update(written_keys(command))
    problems = ttl_violations(ttls, bounded)
    problems += [
        f"{key!r} was written with no TTL (deleted before the test ended; had its process "
        "died first, it would never expire): give it EX/PX or EXPIRE it"
        for key in sorted(plain - given_expiry)
        if ttls.get(key) == -2 and not _declared(key, bounded)
    ]
    return problems


def platform_lua_scripts(root: Path = PLATFORM_SOURCE) -> dict[str, str]:
    """Every Lua script in the platform's source, by SHA-1 (string constants and .lua files)."""
    sources = [path.read_text() for path in root.rglob("*.lua")]
    for path in root.rglob("*.py"):
        text = path.read_text()
        if "redis.call" not in text and "redis.pcall" not in text:
            continue
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if "redis.call" in node.value or "redis.pcall" in node.value:
                    sources.append(node.value)
    return {hashlib.sha1(s.encode()).hexdigest(): s for s in sources}  # noqa: S324


def _issued_by_platform() -> bool:
    # Coroutine frames chain through their awaiters, so a command sent inside a
    # platform call (or a platform background task) has a platform frame above it.
    frame: FrameType | None = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_filename.startswith(_PLATFORM_PREFIX):
            return True
        frame = frame.f_back
    return False


def _endpoint(connection: AbstractConnection) -> Endpoint | None:
    host, port = getattr(connection, "host", None), getattr(connection, "port", None)
    if host is None or port is None:
        return None
    return Endpoint(str(host), int(port), int(connection.db or 0))


@dataclass
class Recorder:
    """The current test's platform commands, and the Lua sources seen, by SHA-1."""

    commands: list[SentCommand] = field(default_factory=list)
    # The platform's scripts plus every script registered in this process
    # (``limits``, ``cashews``): a handful, fixed by code.
    scripts: dict[str, str] = field(default_factory=platform_lua_scripts)

    def install(self) -> Callable[[], None]:
        """Patch redis-py to record; returns the undo."""
        original_pack = AbstractConnection.pack_command
        original_script_init = AsyncScript.__init__
        commands, scripts = self.commands, self.scripts

        def recording_pack(connection: AbstractConnection, *args: Any) -> Any:
            raw = args[0]
            name = (raw.decode() if isinstance(raw, bytes) else str(raw)).split(None, 1)[0].upper()
            if name in _WATCHED and _issued_by_platform():
                commands.append(SentCommand(name, args[1:], _endpoint(connection)))
            return original_pack(connection, *args)

        def registering_init(script: AsyncScript, client: Any, source: Any) -> None:
            original_script_init(script, client, source)
            scripts[script.sha] = _text(source)

        AbstractConnection.pack_command = recording_pack  # type: ignore[method-assign,assignment]
        AsyncScript.__init__ = registering_init  # type: ignore[method-assign,assignment]

        def undo() -> None:
            AbstractConnection.pack_command = original_pack  # type: ignore[method-assign]
            AsyncScript.__init__ = original_script_init  # type: ignore[method-assign]

        return undo


class _Guard:
    """The plugin's state for one pytest process."""

    def __init__(self) -> None:
        self.recorder = Recorder()
        self.undo = self.recorder.install()
        self.clients: dict[object, redis_sync.Redis] = {}

    def client(self, where: Endpoint | str) -> redis_sync.Redis:
        if where not in self.clients:
            self.clients[where] = (
                redis_sync.Redis.from_url(where, socket_timeout=2, socket_connect_timeout=1)
                if isinstance(where, str)
                else redis_sync.Redis(
                    host=where.host,
                    port=where.port,
                    db=where.db,
                    socket_timeout=2,
                    socket_connect_timeout=1,
                )
            )
        return self.clients[where]

    def ttls(self, where: Endpoint | str, keys: Iterable[str]) -> dict[str, int]:
        keys = list(dict.fromkeys(keys))
        if not keys:
            return {}
        try:
            with self.client(where).pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.ttl(key)
                return dict(zip(keys, pipe.execute(), strict=True))
        except redis_sync.ConnectionError:
            return {}  # a server the test stopped: its keys are gone with it

    def prefix_ttls(self, url: str, prefix: str) -> dict[str, int]:
        try:
            found = [_text(k) for k in self.client(url).scan_iter(match=prefix + "*", count=500)]
        except redis_sync.ConnectionError:
            return {}
        return self.ttls(url, found)

    def written_key_ttls(self) -> dict[str, int]:
        by_endpoint: dict[Endpoint, list[str]] = {}
        for command in self.recorder.commands:
            if command.endpoint is not None:
                by_endpoint.setdefault(command.endpoint, []).extend(written_keys(command))
        ttls: dict[str, int] = {}
        for endpoint, keys in by_endpoint.items():
            ttls.update(self.ttls(endpoint, keys))
        return ttls

    def close(self) -> None:
        self.undo()
        for client in self.clients.values():
            client.close()


_GUARD = pytest.StashKey[_Guard]()
_PREFIX_TTLS = pytest.StashKey[dict[str, int]]()


def pytest_configure(config: pytest.Config) -> None:
    config.stash[_GUARD] = _Guard()


def pytest_unconfigure(config: pytest.Config) -> None:
    guard = config.stash.get(_GUARD, None)
    if guard is not None:
        guard.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    item.config.stash[_GUARD].recorder.commands.clear()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_fixture_setup(
    fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
) -> Generator[None, Any, Any]:
    value = yield
    if fixturedef.argname == "redis_prefix":
        guard, node = request.config.stash[_GUARD], request.node
        url = request.getfixturevalue("redis_url")

        def record_prefix_ttls() -> None:
            # Added after the fixture's own teardown, so it runs before it (finalizers
            # run last-in first-out) and after every fixture that depends on it.
            node.stash.setdefault(_PREFIX_TTLS, {}).update(guard.prefix_ttls(url, value))

        fixturedef.addfinalizer(record_prefix_ttls)
    return value


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Generator[None, None, None]:
    result = yield
    guard = item.config.stash[_GUARD]
    ttls = guard.written_key_ttls()
    # Keys under the prefix as they were before its fixture deleted them.
    before_cleanup: dict[str, int] = item.stash.get(_PREFIX_TTLS, {})
    ttls.update(before_cleanup)
    problems = [
        *command_violations(guard.recorder.commands, guard.recorder.scripts),
        *written_ttl_violations(guard.recorder.commands, ttls),
    ]
    guard.recorder.commands.clear()
    if problems:
        listed = "\n".join(f"  - {problem}" for problem in dict.fromkeys(problems))
        pytest.fail(
            f"Redis invariant 9 (SCAN never KEYS; every key a TTL or a bound):\n{listed}\n"
            "(tests/guards/redis_commands.py)",
            pytrace=False,
        )
    return result
