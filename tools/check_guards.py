"""Static guard checks for the Xynergy code base (stdlib ``ast`` only).

The review of an earlier version of the platform found seven kinds of defect
that ordinary linters do not catch.  Each rule keeps one of them out:

XG001  SQL built from strings.  f-strings, ``%``, ``+`` and ``str.format`` put
       caller data straight into SQL text (injection).  Use bound parameters
       (``text("... WHERE id = :id")``) or SQLAlchemy expressions instead.
XG002  Redis ``KEYS``.  It walks the whole keyspace in one blocking call and
       stalls every tenant sharing the instance; use ``SCAN``/``scan_iter``.
XG003  Wildcard CORS.  ``"*"`` origins/headers/methods let any web site drive
       the API from a browser; list the exact origins and headers.
XG004  Module-level state that grows.  A module dict/list/set that runtime code
       keeps adding to, or an unbounded ``lru_cache``/``cache``, lives as long
       as the process and leaked memory per request/tenant.  Bound it (maxlen,
       maxsize, TTL) or hang it off an object with a lifecycle.
XG005  Instance state that grows.  A dict/list/set/deque (without maxlen)/
       defaultdict/OrderedDict/Counter created in ``__init__`` as ``self.x``
       and grown by another method of the class (``self.x[k] = v``,
       ``self.x.append/add/update/setdefault/...``, ``self.x |= ...``; for a
       defaultdict, also reading ``self.x[k]``, which inserts) lives as long as
       the object: a platform-wide object lives as long as the process.  The
       rule: the method that grows it, or a method of the class it calls,
       must compare ``len(self.x)`` with something, directly or through a
       local computed from it (``free = cap - len(self.x)``): the visible
       size bound.
       Draining it elsewhere (a periodic ``clear()``, a swap for a new dict)
       bounds it in time only, so it does not count.  Otherwise use a bounded
       container (``TTLCache``, ``deque(maxlen=N)``) or explain the bound with
       an allow comment on the growing line, the ``__init__`` line or the
       ``class`` line.
XG006  A client or pool built outside the modules that own them.  Building an
       ``aiohttp.ClientSession``/``TCPConnector``, an ``httpx`` client, a Redis
       client or pool (``Redis(...)``, ``Redis.from_url``,
       ``ConnectionPool.from_url``...), an asyncpg connection or pool, or a
       SQLAlchemy engine per call opens new sockets (TCP and TLS handshakes) on
       every request and leaves clients nothing closes at shutdown.  Outbound
       calls go through the shared pooled clients opened in lifespan
       (``platform.http``, ``platform.redis``, ``platform.engine``).  Only the
       owners in ``_POOL_OWNERS`` may build them, each only its own kind.
XG007  A task without a name.  ``asyncio.create_task``, ``loop.create_task``,
       ``TaskGroup.create_task`` and ``asyncio.Task`` without ``name=``,
       ``asyncio.ensure_future``, and ``asyncio.shield`` of a coroutine call
       (its task runs on when the caller is cancelled) make tasks called
       ``Task-N``: a task left running at shutdown, or one that logs an error,
       cannot be traced to the code that started it.  Pass ``name=`` (or call
       ``set_name`` on the task in the same function).  Tasks ``gather`` makes
       are awaited in place and cancelled with their caller: not flagged.
XG008  HTML in a Python string.  A string literal (f-string parts included;
       docstrings excepted) holding an HTML element's tag: pages built in code
       escape nothing by default and cannot be read or reviewed as pages (the
       review found 285 lines of HTML inside one ``main.py``).  Pages are
       Jinja2 template files with autoescaping.
XG009  A URL naming a host outside the settings modules.  ``scheme://host``
       literals hard-code where a service or upstream lives, so moving it means
       a release (the review's ``SERVICE_REGISTRY``).  URLs are settings
       (``config.py`` modules, whose defaults may name one); a scheme alone
       (``"https://"`` in a check) names no host and is fine.
XG000  Guard hygiene: an allow comment without a reason, or an unreadable file.

XG003 also refuses CORS with credentials: ``allow_credentials`` other than the
literal ``False``, and the ``Access-Control-Allow-Credentials`` header spelled
out.  Keys travel in headers the page sets, never in cookies; with credentials
any allowed origin's page could use the browser's ambient credentials.

Escape hatch: end a line with ``# guard: allow XG00N <reason>``.  The reason is
mandatory so that every exception is explained where a reviewer sees it.

Usage: ``python tools/check_guards.py [paths...]`` (default ``src``).  Prints
``path:line:col: CODE message`` per finding (col is 1-based) and exits 1 if
there are any findings, 2 if a path does not exist, else 0.
"""

from __future__ import annotations

import argparse
import ast
import io
import re
import sys
import tokenize
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

_SQL_METHODS = frozenset(
    {"execute", "exec_driver_sql", "executemany", "fetch", "fetchrow", "fetchval"}
)
_SA_MODULES = frozenset({"sa", "sqlalchemy"})
_CORS_LIST_KWARGS = frozenset({"allow_origins", "allow_headers", "allow_methods", "expose_headers"})
_CONTAINER_FACTORIES = frozenset(
    {"dict", "list", "set", "defaultdict", "OrderedDict", "Counter", "deque"}
)
_MUTATORS = frozenset(
    {"append", "add", "update", "setdefault", "extend", "insert", "__setitem__", "appendleft"}
)
# Nodes that open a new name scope: assignments inside are not the outer scope's.
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_ALLOW_RE = re.compile(r"#\s*guard:\s*allow\b(?P<rest>.*)")
_ALLOW_BODY_RE = re.compile(r"\s*(?P<codes>XG\d{3}(?:\s*,\s*XG\d{3})*)(?P<reason>.*)")
_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "venv"})

_CREDENTIALS_HEADER = "access-control-allow-credentials"

# XG006: what builds a client or pool, by qualified name (imports resolved), and its kind.
_REDIS_MODULES = ("redis", "redis.client", "redis.asyncio", "redis.asyncio.client")
_REDIS_POOL_MODULES = ("redis", "redis.connection", "redis.asyncio", "redis.asyncio.connection")
_POOL_CONSTRUCTORS: dict[str, str] = {
    **{
        f"aiohttp.{module}{name}": "aiohttp"
        for module in ("", "client.", "connector.")
        for name in ("ClientSession", "TCPConnector", "UnixConnector")
    },
    **{f"httpx.{name}": "httpx" for name in ("AsyncClient", "Client")},
    **{
        f"{module}.{cls}{method}": "redis"
        for module in _REDIS_MODULES
        for cls in ("Redis", "StrictRedis")
        for method in ("", ".from_url", ".from_pool")
    },
    **{
        f"{module}.{cls}{method}": "redis"
        for module in _REDIS_POOL_MODULES
        for cls in ("ConnectionPool", "BlockingConnectionPool")
        for method in ("", ".from_url")
    },
    "redis.from_url": "redis",
    "redis.asyncio.from_url": "redis",
    **{
        name: "asyncpg"
        for name in ("asyncpg.connect", "asyncpg.create_pool", "asyncpg.pool.create_pool")
    },
    **{
        name: "sqlalchemy"
        for name in (
            "sqlalchemy.create_engine",
            "sqlalchemy.engine.create_engine",
            "sqlalchemy.ext.asyncio.create_async_engine",
            "sqlalchemy.ext.asyncio.engine.create_async_engine",
        )
    },
}
# The modules that own pools (path under the ``xynergy`` package; a trailing
# ``/`` is a whole package) -> the kinds each may build.  Each opens its clients
# once, in lifespan (or for one listener connection it owns), and closes them.
_POOL_OWNERS: dict[str, frozenset[str]] = {
    "platform/http.py": frozenset({"aiohttp"}),  # OutboundHTTP: a session per upstream
    "platform/services.py": frozenset({"httpx"}),  # the in-process ASGI client
    "platform/runtime.py": frozenset({"redis"}),  # the shared Redis pool
    "platform/cache.py": frozenset({"redis"}),  # the client-side tracking connection
    "platform/db/": frozenset({"sqlalchemy", "asyncpg"}),  # the engine
    "ai_routing/routing/shared_flight.py": frozenset({"redis"}),  # its pub/sub listener
    "migrations/env.py": frozenset({"sqlalchemy"}),  # alembic's one-shot engine
}

# XG007: calls that make a task, and whether they can take ``name=``.
_TASK_METHODS = frozenset({"create_task"})
_TASK_FUNCTIONS = frozenset({"asyncio.create_task", "asyncio.Task", "asyncio.tasks.Task"})
_UNNAMEABLE_TASK_FUNCTIONS = frozenset({"asyncio.ensure_future", "asyncio.tasks.ensure_future"})
# shield(coroutine()) wraps it in a task that runs on when the caller is cancelled.
_SHIELDS = frozenset({"asyncio.shield", "asyncio.tasks.shield"})

_Hit = tuple[int, int, str, str]  # line, 1-based col, code, message


@dataclass(frozen=True, order=True)
class Finding:
    path: str
    line: int
    col: int
    code: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}: {self.code} {self.message}"


def _str_const(node: ast.AST | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _is_static_str(node: ast.expr) -> bool:
    """A string whose value is fixed in the source (safe to use as SQL text)."""
    if isinstance(node, ast.JoinedStr):
        return not any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _is_static_str(node.left) and _is_static_str(node.right)
    return _str_const(node) is not None


def _builds_string(node: ast.expr) -> bool:
    """True if ``node`` assembles a string at runtime from non-constant parts."""
    if isinstance(node, ast.JoinedStr):
        return any(isinstance(v, ast.FormattedValue) for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
        return _is_stringish(node.left)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        sides = (node.left, node.right)
        return any(map(_is_stringish, sides)) and not all(map(_is_static_str, sides))
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        return node.func.attr == "format" and _is_stringish(node.func.value)
    return False


def _is_stringish(node: ast.expr) -> bool:
    return _is_static_str(node) or _builds_string(node)


def _root_name(node: ast.expr) -> str | None:
    """``a`` for ``a``, ``a.b.c`` and ``a[k][j]``: the name an expression hangs off."""
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _is_sql_call(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id == "text"
    if isinstance(func, ast.Attribute):
        if func.attr == "text":  # only sqlalchemy's: resp.text() etc. are not SQL
            return _root_name(func.value) in _SA_MODULES
        return func.attr in _SQL_METHODS
    return False


def _scope_nodes(scope: ast.AST) -> Iterator[ast.AST]:
    """Nodes of ``scope`` itself; nested defs/classes/lambdas are not entered."""
    stack = list(ast.iter_child_nodes(scope))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, _SCOPES):
            stack.extend(ast.iter_child_nodes(node))


def _bindings(scope: ast.AST) -> dict[str, bool]:
    """Names local to ``scope`` -> whether any assignment to them builds a string."""
    bound: dict[str, bool] = {}
    global_names: set[str] = set()
    for node in _scope_nodes(scope):
        if isinstance(node, ast.Global):
            global_names.update(node.names)
        elif isinstance(node, ast.arg):
            bound.setdefault(node.arg, False)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.setdefault(node.id, False)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign | ast.NamedExpr):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            built = node.value is not None and _builds_string(node.value)
            for target in targets:
                if isinstance(target, ast.Name):
                    bound[target.id] = bound.get(target.id, False) or built
    return {name: built for name, built in bound.items() if name not in global_names}


def _is_growable(value: ast.expr) -> bool:
    """A mutable container that nothing bounds (``deque(maxlen=N)`` is bounded)."""
    if isinstance(value, ast.Dict | ast.List | ast.Set | ast.ListComp | ast.SetComp):
        return True
    if isinstance(value, ast.DictComp):
        return True
    if not isinstance(value, ast.Call):
        return False
    func = value.func
    if isinstance(func, ast.Name):
        name = func.id
    elif isinstance(func, ast.Attribute) and _root_name(func.value) == "collections":
        name = func.attr
    else:
        return False
    if name != "deque":
        return name in _CONTAINER_FACTORIES
    maxlen = value.args[1] if len(value.args) > 1 else None
    maxlen = next((k.value for k in value.keywords if k.arg == "maxlen"), maxlen)
    return maxlen is None or (isinstance(maxlen, ast.Constant) and maxlen.value is None)


def _module_containers(tree: ast.Module) -> Iterator[tuple[ast.stmt, str]]:
    """(statement, name) for each module-level name bound to a growable container."""
    for node in _scope_nodes(tree):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if _is_growable(value):
            yield from ((node, t.id) for t in targets if isinstance(t, ast.Name))


class _Visitor(ast.NodeVisitor):
    """One pass over a module collecting XG001-XG003 hits and runtime mutations."""

    def __init__(self) -> None:
        self.hits: list[_Hit] = []
        # Module-level name -> first line where code inside a function grows it.
        # Import-time mutation (at module level) runs once, so it cannot leak.
        self.mutated: dict[str, int] = {}
        self._scopes: list[ast.AST] = []
        self._bound: dict[ast.AST, dict[str, bool]] = {}

    def hit(self, node: ast.expr | ast.stmt | ast.keyword, code: str, msg: str) -> None:
        self.hits.append((node.lineno, node.col_offset + 1, code, msg))

    def _bound_in(self, scope: ast.AST) -> dict[str, bool]:
        if scope not in self._bound:
            self._bound[scope] = _bindings(scope)
        return self._bound[scope]

    def _visit_scope(self, node: ast.AST) -> None:
        self._scopes.append(node)
        self.generic_visit(node)
        self._scopes.pop()

    visit_Module = visit_ClassDef = visit_Lambda = _visit_scope

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        for deco in node.decorator_list:
            bare_cache = isinstance(deco, ast.Name) and deco.id == "cache"
            if bare_cache or (
                isinstance(deco, ast.Attribute)
                and deco.attr == "cache"
                and _root_name(deco.value) == "functools"
            ):
                self.hit(deco, "XG004", "unbounded @cache; use lru_cache(maxsize=N)")
        self._visit_scope(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Global(self, node: ast.Global) -> None:
        # Rebinding module state from a function is growth we cannot bound statically.
        for name in node.names:
            self.mutated.setdefault(name, node.lineno)

    def _record_mutation(self, target: ast.expr, line: int) -> None:
        name = _root_name(target)
        functions = [s for s in self._scopes if isinstance(s, _FUNCTIONS)]
        if name is None or not functions:
            return
        if any(name in self._bound_in(f) for f in functions):
            return  # a local (or closure) variable shadows the module-level name
        self.mutated.setdefault(name, line)

    def visit_Assign(self, node: ast.Assign) -> None:
        for target in node.targets:
            if isinstance(target, ast.Subscript):
                self._record_mutation(target, node.lineno)
        self.generic_visit(node)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._record_mutation(node.target, node.lineno)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        if isinstance(node.target, ast.Subscript):
            self._record_mutation(node.target, node.lineno)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _MUTATORS:
            if isinstance(func.value, ast.Name | ast.Subscript):
                self._record_mutation(func.value, node.lineno)
        self._check_sql(node)
        self._check_redis_keys(node)
        self._check_cors(node)
        self._check_lru_cache(node)
        self.generic_visit(node)

    def _name_builds_string(self, name: str) -> bool:
        # One level of indirection: the assignment the name resolves to, found
        # like Python does (innermost scope outwards; class bodies don't enclose).
        for depth, scope in enumerate(reversed(self._scopes)):
            bound = self._bound_in(scope)
            if name in bound and not (depth and isinstance(scope, ast.ClassDef)):
                return bound[name]
        return False

    def _check_sql(self, call: ast.Call) -> None:
        if not (call.args and _is_sql_call(call.func)):
            return
        arg = call.args[0]
        if _builds_string(arg):
            what = "SQL text"
        elif isinstance(arg, ast.Name) and self._name_builds_string(arg.id):
            what = f"SQL text in `{arg.id}`"
        else:
            return
        self.hit(
            call,
            "XG001",
            f"{what} is built from strings (f-string/%/+/format); "
            "use bound parameters or SQLAlchemy expressions",
        )

    def _check_redis_keys(self, call: ast.Call) -> None:
        func = call.func
        if not isinstance(func, ast.Attribute):
            return
        # Any argument means a pattern: dict.keys() never takes one.
        is_keys = func.attr == "keys" and bool(call.args or call.keywords)
        command = _str_const(call.args[0]) if call.args else None
        if func.attr == "execute_command" and command is not None:
            is_keys = command.strip().upper() == "KEYS"
        if is_keys:
            self.hit(call, "XG002", "Redis KEYS blocks the server; use scan_iter")

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and node.value.strip().lower() == _CREDENTIALS_HEADER:
            self.hit(node, "XG003", "CORS must not allow credentials")

    def _check_cors(self, call: ast.Call) -> None:
        for kw in call.keywords:
            if kw.arg == "allow_credentials" and not (
                isinstance(kw.value, ast.Constant) and kw.value.value is False
            ):
                self.hit(kw, "XG003", "CORS must not allow credentials (allow_credentials=False)")
            value = kw.value
            elts = [value]
            if isinstance(value, ast.List | ast.Tuple | ast.Set):
                elts = value.elts
            if kw.arg in _CORS_LIST_KWARGS and any(_str_const(e) == "*" for e in elts):
                self.hit(kw, "XG003", f"wildcard CORS {kw.arg}; list exact values")
            regex = _str_const(value)
            if kw.arg == "allow_origin_regex" and regex is not None:
                if regex == "*" or ".*" in regex:
                    self.hit(kw, "XG003", "wildcard CORS allow_origin_regex")

    def _check_lru_cache(self, call: ast.Call) -> None:
        func = call.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name != "lru_cache":
            return
        maxsize = call.args[0] if call.args else None
        maxsize = next((k.value for k in call.keywords if k.arg == "maxsize"), maxsize)
        if isinstance(maxsize, ast.Constant) and maxsize.value is None:
            self.hit(call, "XG004", "lru_cache(maxsize=None) is unbounded")


# --- XG005: instance state -------------------------------------------------------


def _container_kind(value: ast.expr) -> str | None:
    """``"defaultdict"``/``"other"`` for a growable container, else None."""
    if not _is_growable(value):
        return None
    func = value.func if isinstance(value, ast.Call) else None
    name = getattr(func, "id", None) or getattr(func, "attr", None)
    return "defaultdict" if name == "defaultdict" else "other"


def _self_name(method: ast.FunctionDef | ast.AsyncFunctionDef) -> str | None:
    decorators = {getattr(d, "id", None) for d in method.decorator_list}
    if decorators & {"staticmethod", "classmethod"}:
        return None
    positional = [*method.args.posonlyargs, *method.args.args]
    return positional[0].arg if positional else None


def _self_attr(node: ast.expr, self_name: str) -> str | None:
    """``x`` for ``self.x``; None for anything else."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == self_name
    ):
        return node.attr
    return None


def _container_of(node: ast.expr, self_name: str) -> str | None:
    """``x`` for ``self.x``, ``self.x[k]``, ``self.x[k][j]``: the container it writes into."""
    while isinstance(node, ast.Subscript):
        node = node.value
    return _self_attr(node, self_name)


def _method_nodes(method: ast.AST) -> Iterator[ast.AST]:
    """Nodes of a method, closures included (they share ``self``); nested classes not."""
    stack = list(ast.iter_child_nodes(method))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.ClassDef):
            stack.extend(ast.iter_child_nodes(node))


@dataclass
class _MethodFacts:
    grows: list[tuple[str, ast.AST]]  # (attribute, node that grows it)
    sized: set[str]  # attributes whose len() this method compares
    calls: set[str]  # methods of the same class it calls through self


def _method_facts(
    method: ast.FunctionDef | ast.AsyncFunctionDef, kinds: dict[str, str]
) -> _MethodFacts:
    facts = _MethodFacts([], set(), set())
    self_name = _self_name(method)
    if self_name is None:
        return facts

    def grown(target: ast.expr, node: ast.AST, *, direct: bool = False) -> None:
        name = _container_of(target, self_name)
        if name in kinds and (direct or isinstance(target, ast.Subscript)):
            facts.grows.append((name, node))

    # Sizes compared directly, and locals computed from a size (``free = cap - len(...)``).
    compared: set[str] = set()
    size_locals: dict[str, set[str]] = {}
    for node in _method_nodes(method):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                grown(target, node)
                if isinstance(target, ast.Name) and node.value is not None:
                    sizes = _sizes_read(node.value, self_name)
                    size_locals.setdefault(target.id, set()).update(sizes)
        elif isinstance(node, ast.AugAssign):
            grown(node.target, node, direct=True)
        elif isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            name = _self_attr(node.value, self_name)
            if name is not None and kinds.get(name) == "defaultdict":
                facts.grows.append((name, node))  # a missing key is inserted on read
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr in _MUTATORS:
                grown(node.func.value, node, direct=True)
            elif _self_attr(node.func, self_name) is not None:
                facts.calls.add(node.func.attr)
        elif isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                facts.sized.update(_sizes_read(side, self_name))
                compared.update(n.id for n in ast.walk(side) if isinstance(n, ast.Name))
    for name in compared:
        facts.sized.update(size_locals.get(name, ()))
    return facts


def _sizes_read(expr: ast.expr, self_name: str) -> set[str]:
    """Attributes ``x`` whose ``len(self.x)`` appears in ``expr``."""
    found: set[str] = set()
    for node in ast.walk(expr):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "len"
            and len(node.args) == 1
        ):
            name = _self_attr(node.args[0], self_name)
            if name is not None:
                found.add(name)
    return found


def _init_containers(
    init: ast.FunctionDef | ast.AsyncFunctionDef,
) -> dict[str, tuple[str, ast.stmt]]:
    """Attributes ``__init__`` binds to growable containers -> (kind, statement)."""
    self_name = _self_name(init)
    found: dict[str, tuple[str, ast.stmt]] = {}
    if self_name is None:
        return found
    for node in _method_nodes(init):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        kind = _container_kind(value)
        for target in targets:
            name = _self_attr(target, self_name)
            if kind is not None and name is not None:
                found.setdefault(name, (kind, node))
    return found


def _instance_state_hits(tree: ast.Module) -> Iterator[tuple[_Hit, tuple[int, ...]]]:
    """XG005 hits, each with the other lines whose allow comment also covers it."""
    for cls in ast.walk(tree):
        if not isinstance(cls, ast.ClassDef):
            continue
        methods = {
            node.name: node
            for node in cls.body
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        }
        init = methods.get("__init__")
        if init is None:
            continue
        containers = _init_containers(init)
        if not containers:
            continue
        kinds = {name: kind for name, (kind, _) in containers.items()}
        facts = {name: _method_facts(m, kinds) for name, m in methods.items() if name != "__init__"}
        reported: set[tuple[str, int]] = set()
        for name, method_facts in facts.items():
            for attr, node in method_facts.grows:
                line = getattr(node, "lineno", 1)
                if (attr, line) in reported or _sizes(attr, name, facts):
                    continue
                reported.add((attr, line))
                defined = containers[attr][1]
                message = (
                    f"`self.{attr}` (created in __init__, line {defined.lineno}) grows in "
                    f"{name}() with no len(self.{attr}) check there or in a method it "
                    "calls; bound it or explain the bound"
                )
                col = getattr(node, "col_offset", 0) + 1
                # The definition may be wrapped over several lines by the formatter.
                last = defined.end_lineno or defined.lineno
                yield (line, col, "XG005", message), (*range(defined.lineno, last + 1), cls.lineno)


def _sizes(attr: str, method: str, facts: dict[str, _MethodFacts]) -> bool:
    """Whether ``method``, or a method it calls (transitively), compares len(self.attr)."""
    seen: set[str] = set()
    stack = [method]
    while stack:
        name = stack.pop()
        if name in seen or name not in facts:
            continue
        seen.add(name)
        if attr in facts[name].sized:
            return True
        stack.extend(facts[name].calls)
    return False


# --- XG006 and XG007: imports resolved to qualified names ---------------------------


def _imported_names(tree: ast.Module) -> dict[str, str]:
    """Local name -> the qualified name it was imported as (``aio`` -> ``aiohttp``)."""
    names: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    names[alias.asname] = alias.name
                else:  # ``import a.b`` binds ``a``
                    root = alias.name.split(".", 1)[0]
                    names[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _qualified(func: ast.expr, imports: dict[str, str]) -> str | None:
    """``aiohttp.ClientSession`` for ``aiohttp.ClientSession`` or an imported alias of it."""
    attrs: list[str] = []
    while isinstance(func, ast.Attribute):
        attrs.append(func.attr)
        func = func.value
    if not isinstance(func, ast.Name):
        return None
    return ".".join([imports.get(func.id, func.id), *reversed(attrs)])


def _package_path(path: str) -> str | None:
    """``platform/http.py`` for ``.../src/xynergy/platform/http.py``; None outside it."""
    posix = Path(path).as_posix()
    marker = "xynergy/"
    at = posix.rfind("/" + marker)
    if at >= 0:
        return posix[at + 1 + len(marker) :]
    return posix[len(marker) :] if posix.startswith(marker) else None


def _pool_kinds_owned(path: str) -> frozenset[str]:
    inside = _package_path(path)
    if inside is None:
        return frozenset()
    for owner, kinds in _POOL_OWNERS.items():
        if inside == owner or (owner.endswith("/") and inside.startswith(owner)):
            return kinds
    return frozenset()


def _pool_hits(tree: ast.Module, imports: dict[str, str], path: str) -> Iterator[_Hit]:
    """XG006: a client or pool built in a module that does not own that kind."""
    owned = _pool_kinds_owned(path)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _qualified(node.func, imports)
        kind = _POOL_CONSTRUCTORS.get(name or "")
        if kind is None or kind in owned:
            continue
        yield (
            node.lineno,
            node.col_offset + 1,
            "XG006",
            f"`{name}` builds a {kind} client or pool outside the modules that own it; "
            "use the shared one opened in lifespan (platform.http, platform.redis, "
            "platform.engine)",
        )


def _makes_task(call: ast.Call, imports: dict[str, str]) -> bool:
    """Whether ``call`` makes a task (checked on its own for a name)."""
    name = _qualified(call.func, imports) or ""
    if name in _TASK_FUNCTIONS or name in _UNNAMEABLE_TASK_FUNCTIONS:
        return True
    method = call.func.attr if isinstance(call.func, ast.Attribute) else None
    return (method or getattr(call.func, "id", None)) in _TASK_METHODS


def _task_call(call: ast.Call, imports: dict[str, str]) -> str | None:
    """What makes a task here without a name (``create_task``...), else None."""
    func = call.func
    name = _qualified(func, imports) or ""
    if name in _UNNAMEABLE_TASK_FUNCTIONS:
        return name
    if name in _SHIELDS:
        inner = call.args[0] if call.args else None
        shields_a_coroutine = isinstance(inner, ast.Call) and not _makes_task(inner, imports)
        return name if shields_a_coroutine else None
    named = any(k.arg == "name" or k.arg is None for k in call.keywords)
    if named:
        return None
    if name in _TASK_FUNCTIONS:
        return name
    if isinstance(func, ast.Attribute) and func.attr in _TASK_METHODS:
        return f"{ast.unparse(func.value)}.{func.attr}"
    if isinstance(func, ast.Name) and func.id in _TASK_METHODS:
        return func.id
    return None


def _unnamed_task_hits(tree: ast.Module, imports: dict[str, str]) -> Iterator[_Hit]:
    """XG007: tasks made without ``name=`` and not renamed in the same scope."""
    for scope in ast.walk(tree):
        if not isinstance(scope, (ast.Module, *_SCOPES)):
            continue
        nodes = list(_scope_nodes(scope))
        renamed = {
            node.func.value.id
            for node in nodes
            if isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "set_name"
            and isinstance(node.func.value, ast.Name)
        }
        assigned = {
            id(node.value): target.id
            for node in nodes
            if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None
            for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            if isinstance(target, ast.Name)
        }
        for node in nodes:
            if not isinstance(node, ast.Call):
                continue
            what = _task_call(node, imports)
            if what is None or assigned.get(id(node)) in renamed:
                continue
            yield (
                node.lineno,
                node.col_offset + 1,
                "XG007",
                f"`{what}(...)` makes a task without a name; pass name= "
                "(ensure_future, shield(coroutine): make the task with create_task(name=))",
            )


# --- XG008 and XG009: literals that belong in templates and settings ---------------

# The opening tag of a common HTML element (text that merely mentions "<" is not).
_HTML_TAG_RE = re.compile(
    r"<(?:!doctype|html|head|body|div|span|p|a|script|style|table|tr|td|th|form|input"
    r"|button|select|option|textarea|label|ul|ol|li|h[1-6]|img|iframe|section|main|nav"
    r"|header|footer|br)(?:\s[^<>]*)?/?>",
    re.IGNORECASE,
)
# A host is a dotted name or address, localhost, or a bracketed IPv6 address: a
# placeholder such as "scheme://host[:port]" in a message names none.
_URL_WITH_HOST_RE = re.compile(
    r"\b[a-z][a-z0-9+.-]*://(?:[^/\s@]*@)?(?:[a-z0-9-]+\.)+[a-z0-9-]+|://localhost\b|://\[[0-9a-f:]+\]",
    re.IGNORECASE,
)
_SETTINGS_MODULE = "config.py"


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring constants of the module, its classes and functions."""
    found: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _literal_hits(tree: ast.Module, path: str) -> Iterator[_Hit]:
    """XG008 (HTML tags) and XG009 (URLs naming a host) in string literals."""
    urls_allowed = Path(path).name == _SETTINGS_MODULE
    docstrings = _docstrings(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        if id(node) in docstrings:
            continue
        if _HTML_TAG_RE.search(node.value):
            yield (
                node.lineno,
                node.col_offset + 1,
                "XG008",
                "HTML in a Python string; render a Jinja2 template file instead",
            )
        if not urls_allowed and _URL_WITH_HOST_RE.search(node.value):
            yield (
                node.lineno,
                node.col_offset + 1,
                "XG009",
                "a URL naming a host belongs in settings (a config.py default), not in code",
            )


def _allow_comments(source: str) -> tuple[dict[int, set[str]], list[_Hit]]:
    """Codes allowed per line by ``# guard: allow``, plus XG000 for bad comments."""
    allowed: dict[int, set[str]] = {}
    problems: list[_Hit] = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return allowed, problems
    for tok in tokens:
        match = _ALLOW_RE.search(tok.string) if tok.type == tokenize.COMMENT else None
        if match is None:
            continue
        line, col = tok.start
        body = _ALLOW_BODY_RE.fullmatch(match["rest"])
        if body is None:
            problems.append(
                (
                    line,
                    col + 1,
                    "XG000",
                    "malformed allow comment; expected `# guard: allow XG00N <reason>`",
                )
            )
        elif not body["reason"].strip(" \t-:"):
            problems.append((line, col + 1, "XG000", "allow comment needs a reason"))
        else:
            codes = re.findall(r"XG\d{3}", body["codes"])
            allowed.setdefault(line, set()).update(codes)
    return allowed, problems


def check_source(source: str, path: str = "<fixture>") -> list[Finding]:
    """All findings for one module's source text, sorted by position."""
    try:
        tree = ast.parse(source, filename=path)
    except (SyntaxError, ValueError) as exc:
        line = getattr(exc, "lineno", None) or 1
        return [Finding(path, line, 1, "XG000", f"cannot parse: {exc}")]
    allowed, hits = _allow_comments(source)
    visitor = _Visitor()
    visitor.visit(tree)
    hits += visitor.hits
    imports = _imported_names(tree)
    hits += _pool_hits(tree, imports, path)
    hits += _unnamed_task_hits(tree, imports)
    hits += _literal_hits(tree, path)
    for stmt, name in _module_containers(tree):
        if name in visitor.mutated:
            hits.append(
                (
                    stmt.lineno,
                    stmt.col_offset + 1,
                    "XG004",
                    f"module-level `{name}` grows at runtime (line "
                    f"{visitor.mutated[name]}); bound it or give it an owner",
                )
            )
    findings = [
        Finding(path, line, col, code, message)
        for line, col, code, message in hits
        if code not in allowed.get(line, set())
    ]
    for (line, col, code, message), also in _instance_state_hits(tree):
        if not any(code in allowed.get(n, set()) for n in (line, *also)):
            findings.append(Finding(path, line, col, code, message))
    return sorted(findings)


def iter_python_files(paths: Iterable[str | Path]) -> list[Path]:
    """The .py files under ``paths``; hidden and cache directories are skipped."""
    files: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_file():
            files.append(path)
        elif path.is_dir():
            for file in sorted(path.rglob("*.py")):
                parts = file.relative_to(path).parts[:-1]
                if not any(p.startswith(".") or p in _SKIP_DIRS for p in parts):
                    files.append(file)
        else:
            raise FileNotFoundError(f"no such file or directory: {path}")
    return files


def check_file(path: Path) -> list[Finding]:
    try:
        source = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [Finding(str(path), 1, 1, "XG000", f"cannot read: {exc}")]
    return check_source(source, str(path))


def check_paths(paths: Iterable[str | Path]) -> list[Finding]:
    return [f for file in iter_python_files(paths) for f in check_file(file)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Xynergy static guard checks")
    parser.add_argument("paths", nargs="*", default=["src"], help="files or dirs")
    args = parser.parse_args(argv)
    try:
        files = iter_python_files(args.paths)
    except FileNotFoundError as exc:
        sys.stderr.write(f"check_guards: {exc}\n")
        return 2
    findings = [f for file in files for f in check_file(file)]
    for finding in findings:
        sys.stdout.write(f"{finding}\n")
    if findings:
        count = f"{len(findings)} finding(s) in {len(files)} file(s)"
        sys.stderr.write(f"check_guards: {count}\n")
        return 1
    sys.stdout.write(f"check_guards: {len(files)} file(s) checked, no findings\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
