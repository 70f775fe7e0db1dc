"""Write Tessera token-pipeline plugins in Python.

A Tessera plugin is a WebAssembly component that the issuer runs at a stage of
a token request. With this SDK a plugin is a module, ``plugin.py``, defining
one or both stage functions::

    def on_credentials_exchange(event, api): ...   # client credentials grant
    def on_authorize(event, api): ...              # a user signed in

``event`` is a read-only :class:`Event`: the client, the API, the user, the
request, the transaction, the tokens so far, and lazy :class:`Config` and
:class:`Secrets` mappings backed by the host. ``api`` is an :class:`Api` that
collects what the function wants: claims and scopes to change, or a denial.
An exception in the function is a failure (a trap): the host fails the
request per the plugin's ``on_error`` setting.

This module is plain Python and imports nothing from the component bindings,
so plugin logic runs natively under ``python -m unittest`` (see
:mod:`tessera_plugin.testing`). Only :mod:`tessera_plugin._component`, the
entry point of a component build, touches the generated bindings.

Claim and metadata values are JSON values. They travel to and from the host
as the WIT ``value`` variant of ``tessera:plugin@0.1.0``:

============================================  ==================
Python                                        WIT ``value``
============================================  ==================
``None``                                      ``null``
``bool``                                      ``boolean``
``int`` in the signed 64-bit range            ``integer``
other ``int``, finite ``float``               ``number``
``str``                                       ``text``
``list`` or ``tuple`` of ``str`` only         ``text-list``
anything else JSON can encode                 ``json`` (JSON text)
============================================  ==================
"""

from __future__ import annotations

import inspect
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ._views import ApiInfo, Client, Request, TokenState, Transaction, User

__all__ = [
    "APP_TYPES",
    "DENY_CODES",
    "LEVELS",
    "STAGES",
    "AccessApi",
    "AccessTokenApi",
    "Api",
    "ApiInfo",
    "Cache",
    "CacheEntry",
    "CacheStore",
    "Changes",
    "Client",
    "Config",
    "Denial",
    "Event",
    "IdTokenApi",
    "Log",
    "MemoryCacheStore",
    "Request",
    "Secrets",
    "TokenState",
    "Transaction",
    "User",
    "from_wit_value",
    "run_stage",
    "to_wit_value",
]

__version__ = "0.1.0"

#: The stages, by their WIT names, with the function a plugin defines for each.
STAGES: dict[str, str] = {
    "credentials-exchange": "on_credentials_exchange",
    "authorize": "on_authorize",
}

#: The kinds of application a client can be.
APP_TYPES: tuple[str, ...] = ("spa", "regular_web", "native", "machine")

#: The OAuth error codes a denial can carry (RFC 6749 section 5.2, RFC 8707).
DENY_CODES: tuple[str, ...] = (
    "access_denied",
    "invalid_scope",
    "invalid_request",
    "unauthorized_client",
    "invalid_target",
)

#: Log levels, least severe first.
LEVELS: tuple[str, ...] = ("trace", "debug", "info", "warn", "error")

#: A value as the WIT ``value`` variant carries it: ``(case, payload)``, e.g.
#: ``("text-list", ["a", "b"])`` or ``("null", None)``.
WitValue = tuple[str, Any]

_S64_MIN, _S64_MAX = -(2**63), 2**63 - 1


# --- values -----------------------------------------------------------------


def to_wit_value(value: Any) -> WitValue:
    """Encodes a JSON value as a WIT ``value`` case and payload.

    >>> to_wit_value(["eu", "us"])
    ('text-list', ['eu', 'us'])
    >>> to_wit_value({"rps": 10})
    ('json', '{"rps":10}')

    Raises ``ValueError`` for NaN and infinities (anywhere in the value) and
    ``TypeError`` for values JSON cannot encode.
    """
    if value is None:
        return ("null", None)
    if isinstance(value, bool):
        return ("boolean", value)
    if isinstance(value, int):
        if _S64_MIN <= value <= _S64_MAX:
            return ("integer", int(value))
        try:
            return ("number", float(value))
        except OverflowError:
            raise ValueError(f"the integer {value} is too large for a JSON number") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{value} is not a JSON number (NaN and infinities are refused)")
        return ("number", value)
    if isinstance(value, str):
        return ("text", value)
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return ("text-list", list(value))
    try:
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except ValueError:
        raise ValueError(
            f"{value!r} contains NaN or an infinity, which JSON cannot carry"
        ) from None
    except TypeError as error:
        raise TypeError(f"{value!r} is not a JSON value: {error}") from None
    return ("json", text)


def from_wit_value(case: str, payload: Any) -> Any:
    """Decodes a WIT ``value`` case and payload into a JSON value.

    ``json`` text that does not parse is kept as a string, and a non-finite
    ``number`` becomes ``None``, rather than failing the plugin.

    >>> from_wit_value("json", '{"rps": 10}')
    {'rps': 10}
    """
    if case == "null":
        return None
    if case == "boolean":
        return bool(payload)
    if case == "integer":
        return int(payload)
    if case == "number":
        number = float(payload)
        return number if math.isfinite(number) else None
    if case == "text":
        return str(payload)
    if case == "text-list":
        return [str(item) for item in payload]
    if case == "json":
        try:
            return json.loads(payload)
        except ValueError:
            return str(payload)
    raise ValueError(f"unknown WIT value case {case!r}")


# --- the event --------------------------------------------------------------


# The views of the event's parts (``Client``, ``ApiInfo``, ``User``,
# ``Request``, ``Transaction``, ``TokenState``) are generated from the WIT
# by ``cargo xtask gen``: ``_views.py``, imported at the top.


class _Lookup:
    """A read-only mapping whose values come from a lookup function.

    The host cannot list what it holds, so there is no iteration: only
    ``[]``, ``get`` and ``in``.
    """

    _what = "key"

    def __init__(self, lookup: Callable[[str], Optional[str]]) -> None:
        self._lookup = lookup

    def get(self, key: str, default: Optional[str] = None) -> Optional[str]:
        """The value of ``key``, or ``default`` when there is none."""
        value = self._lookup(key)
        return default if value is None else value

    def __getitem__(self, key: str) -> str:
        value = self._lookup(key)
        if value is None:
            raise KeyError(f"no {self._what} {key!r}")
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._lookup(key) is not None


class Config(_Lookup):
    """The plugin's ``config`` table in ``tessera.toml``, read lazily.

    Strings come back as they are; other TOML values (lists, tables,
    numbers, booleans) come back as JSON text. :meth:`json` parses them.
    """

    _what = "config key"

    def json(self, key: str, default: Any = None) -> Any:
        """The value of ``key`` parsed as JSON, falling back to the raw
        string when it does not parse; ``default`` when absent.

        ``metadata_keys = ["a", "b"]`` gives ``["a", "b"]``;
        ``metadata_keys = "a, b"`` gives ``"a, b"``.
        """
        text = self._lookup(key)
        if text is None:
            return default
        try:
            return json.loads(text)
        except ValueError:
            return text

    def __repr__(self) -> str:
        return "<tessera_plugin.Config>"


class Secrets(_Lookup):
    """The plugin's declared secrets, read lazily. Values never appear in
    ``repr``; keep them out of logs and claims too."""

    _what = "secret"

    def __repr__(self) -> str:
        return "<tessera_plugin.Secrets (values hidden)>"


def _no_value(_key: str) -> Optional[str]:
    return None


@dataclass(frozen=True)
class Event:
    """What a stage function receives.

    ``user`` and ``id_token`` are set in the authorize stage only; ``api`` is
    ``None`` in the authorize stage when only OpenID Connect scopes were
    asked for.
    """

    #: ``"credentials-exchange"`` or ``"authorize"``.
    stage: str
    #: The application asking for a token.
    client: Client
    #: The API the access token is for.
    api: Optional[ApiInfo]
    #: The HTTP request.
    request: Request
    #: The protocol state.
    transaction: Transaction
    #: The access token so far.
    access_token: TokenState
    #: The signed-in user (authorize only).
    user: Optional[User] = None
    #: The ID token's custom claims so far (authorize only).
    id_token: Optional[TokenState] = None
    #: The plugin's configuration.
    config: Config = field(default_factory=lambda: Config(_no_value))
    #: The plugin's secrets.
    secrets: Secrets = field(default_factory=lambda: Secrets(_no_value))


# --- the api ----------------------------------------------------------------


@dataclass(frozen=True)
class Denial:
    """A refusal: the request fails with this OAuth error."""

    #: One of :data:`DENY_CODES`.
    code: str
    #: Sent to the client as ``error_description``; keep it free of secrets.
    description: str


@dataclass(frozen=True)
class Changes:
    """What the plugin changed, as the host will receive it.

    Claim values have been through the WIT encoding (tuples are lists, for
    instance); ``None`` means the claim is removed.
    """

    access_token_claims: dict[str, Any]
    id_token_claims: dict[str, Any]
    add_scopes: list[str]
    remove_scopes: list[str]


def _check_str(what: str, value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    return value


def _encode_claim(name: Any, value: Any) -> WitValue:
    _check_str("a claim name", name)
    try:
        return to_wit_value(value)
    except (TypeError, ValueError) as error:
        raise type(error)(f"claim {name!r}: {error}") from None


class _Claims:
    """Custom claims of one token: set, or remove with ``None``."""

    def __init__(self) -> None:
        # name -> encoded value; a dict keeps the position of the first edit.
        self._claims: dict[str, WitValue] = {}

    def set_custom_claim(self, name: str, value: Any) -> None:
        """Sets a custom claim, replacing any earlier value; ``None`` removes
        it. Reserved claims (``iss sub aud exp ... scope``) fail the plugin in
        the host."""
        self._claims[name] = _encode_claim(name, value)

    def remove_custom_claim(self, name: str) -> None:
        """Removes a custom claim that an earlier plugin set."""
        self._claims[_check_str("a claim name", name)] = ("null", None)


class IdTokenApi(_Claims):
    """``api.id_token``: custom claims of the ID token (authorize only)."""


class AccessTokenApi(_Claims):
    """``api.access_token``: custom claims and scopes of the access token."""

    def __init__(self) -> None:
        super().__init__()
        self._added: list[str] = []
        self._removed: list[str] = []

    def add_scope(self, scope: str) -> None:
        """Adds a scope (authorize stage only, within what the API's policy
        allows). The last of add and remove for a scope wins."""
        _check_str("a scope", scope)
        if scope in self._removed:
            self._removed.remove(scope)
        if scope not in self._added:
            self._added.append(scope)

    def remove_scope(self, scope: str) -> None:
        """Removes a scope; removing one the token does not carry is fine."""
        _check_str("a scope", scope)
        if scope in self._added:
            self._added.remove(scope)
        if scope not in self._removed:
            self._removed.append(scope)


class AccessApi:
    """``api.access``: refuse the request."""

    def __init__(self) -> None:
        self.denial: Optional[Denial] = None

    def deny(self, code_or_description: str, description: Optional[str] = None) -> None:
        """Refuses the request with an OAuth error.

        ``deny("outside office hours")`` uses ``access_denied``;
        ``deny("invalid_scope", "write:orders needs a gold tier")`` picks the
        code (one of :data:`DENY_CODES`, dashes accepted). The first denial
        counts; every other change is dropped.
        """
        if description is None:
            code, description = "access_denied", code_or_description
        else:
            code = _check_str("a deny code", code_or_description).replace("-", "_")
            if code not in DENY_CODES:
                raise ValueError(
                    f"unknown deny code {code_or_description!r}; expected one of "
                    + ", ".join(DENY_CODES)
                )
        _check_str("a denial description", description)
        if self.denial is None:
            self.denial = Denial(code, description)


class Log:
    """``api.log``: lines in the request's trace and the issuer's log.

    The host keeps at most 32 lines per call, each truncated to 1 KiB.
    """

    def __init__(self, sink: Callable[[str, str], None]) -> None:
        self._sink = sink

    def log(self, level: str, *parts: object) -> None:
        """Writes ``parts``, joined by spaces, at ``level`` (see :data:`LEVELS`)."""
        if level not in LEVELS:
            raise ValueError(f"unknown log level {level!r}; expected one of " + ", ".join(LEVELS))
        self._sink(level, " ".join(str(part) for part in parts))

    def trace(self, *parts: object) -> None:
        """Very detailed tracing."""
        self.log("trace", *parts)

    def debug(self, *parts: object) -> None:
        """Debugging detail."""
        self.log("debug", *parts)

    def info(self, *parts: object) -> None:
        """Normal operation."""
        self.log("info", *parts)

    def warn(self, *parts: object) -> None:
        """Something unexpected that did not stop the plugin."""
        self.log("warn", *parts)

    warning = warn

    def error(self, *parts: object) -> None:
        """Something failed."""
        self.log("error", *parts)


@dataclass(frozen=True)
class CacheEntry:
    """A cached value and when it expires (milliseconds since the epoch)."""

    value: str
    expires_at: int


class CacheStore:
    """What :class:`Cache` stores into: the component's host
    (``tessera:cache/store``), or :class:`MemoryCacheStore` in tests."""

    def get(self, key: str) -> Optional[CacheEntry]:
        """The live entry under ``key``."""
        raise NotImplementedError

    def set(self, key: str, value: str, ttl_ms: Optional[int]) -> int:
        """Stores; returns when it expires. Raises :class:`ValueError` with
        the host's reason when it stores nothing."""
        raise NotImplementedError

    def delete(self, key: str) -> bool:
        """Removes; whether there was a live entry."""
        raise NotImplementedError


class MemoryCacheStore(CacheStore):
    """An in-memory store with the host's limits (keys up to 512 bytes,
    values up to 4 KiB, a time to live of 15 minutes by default and a day at
    most), for tests. ``now`` gives milliseconds since the epoch."""

    def __init__(self, now: Optional[Callable[[], int]] = None) -> None:
        import time

        self._now = now or (lambda: int(time.time() * 1000))
        self.entries: dict[str, CacheEntry] = {}

    def get(self, key: str) -> Optional[CacheEntry]:
        entry = self.entries.get(key)
        if entry is not None and entry.expires_at <= self._now():
            del self.entries[key]
            return None
        return entry

    def set(self, key: str, value: str, ttl_ms: Optional[int]) -> int:
        if len(key.encode()) > 512:
            raise ValueError(f"the key has {len(key.encode())} bytes; at most 512")
        if len(value.encode()) > 4096:
            raise ValueError(f"the value has {len(value.encode())} bytes; at most 4096")
        if ttl_ms == 0:
            raise ValueError("the time to live is zero")
        expires_at = self._now() + min(ttl_ms if ttl_ms is not None else 15 * 60_000, 86_400_000)
        self.entries[key] = CacheEntry(value, expires_at)
        return expires_at

    def delete(self, key: str) -> bool:
        return self.get(key) is not None and self.entries.pop(key, None) is not None


class Cache:
    """``api.cache``: the plugin's host-side cache, kept across requests and
    reloads in one Tessera process (docs/reference.md, "The plugin cache").
    Keys and values are strings (``json.dumps`` what is not)."""

    def __init__(self, store: CacheStore) -> None:
        self._store = store

    def get(self, key: str) -> Optional[CacheEntry]:
        """The entry under ``key``, or ``None`` when absent or expired."""
        return self._store.get(_check_str("api.cache.get: the key", key))

    def set(self, key: str, value: str, ttl: Optional[float] = None) -> int:
        """Stores ``value`` for ``ttl`` seconds (default 15 minutes, at most
        a day); returns when it expires (milliseconds since the epoch).
        Raises :class:`ValueError` for a key over 512 bytes or a value over
        4 KiB; nothing is stored then."""
        _check_str("api.cache.set: the key", key)
        _check_str("api.cache.set: the value", value)
        ttl_ms = None if ttl is None else int(ttl * 1000)
        if ttl_ms is not None and ttl_ms < 1:
            raise ValueError(f"api.cache.set: the time to live must be 1 ms or more, got {ttl} s")
        return self._store.set(key, value, ttl_ms)

    def delete(self, key: str) -> bool:
        """Removes the entry under ``key``; whether there was one."""
        return self._store.delete(_check_str("api.cache.delete: the key", key))


class Api:
    """The second argument of a stage function: collects its changes.

    - ``api.access_token``: :class:`AccessTokenApi`
      (``set_custom_claim``, ``remove_custom_claim``, ``add_scope``,
      ``remove_scope``);
    - ``api.id_token``: :class:`IdTokenApi` (authorize only);
    - ``api.access.deny(...)``: :class:`AccessApi`;
    - ``api.log.info(...)`` etc.: :class:`Log`;
    - ``api.cache``: :class:`Cache`.
    """

    def __init__(self, log: Callable[[str, str], None], cache: Optional[CacheStore] = None) -> None:
        self.access_token = AccessTokenApi()
        self.id_token = IdTokenApi()
        self.access = AccessApi()
        self.log = Log(log)
        self.cache = Cache(cache if cache is not None else MemoryCacheStore())

    @property
    def denial(self) -> Optional[Denial]:
        """The denial, if the function denied the request."""
        return self.access.denial

    @property
    def changes(self) -> Changes:
        """The changes collected so far, decoded as the host will see them."""
        return Changes(
            access_token_claims=_decoded(self.access_token._claims),
            id_token_claims=_decoded(self.id_token._claims),
            add_scopes=list(self.access_token._added),
            remove_scopes=list(self.access_token._removed),
        )


def _decoded(claims: dict[str, WitValue]) -> dict[str, Any]:
    return {name: from_wit_value(*value) for name, value in claims.items()}


def run_stage(function: Callable[[Event, Api], Any], event: Event, api: Api) -> None:
    """Calls a stage function; refuses ``async def`` functions, whose body
    would never run."""
    result = function(event, api)
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()
        raise TypeError(
            f"{getattr(function, '__name__', 'the stage function')} is async; "
            "Tessera stage functions are plain functions (def)"
        )
