"""The component entry point: the only module that touches the bindings.

``python -m tessera_plugin.build`` hands this module to componentize-py as
the app. It exists only inside a component build, where componentize-py has
generated ``wit_world`` and ``componentize_py_types`` for the chosen world,
and where the author's ``plugin`` module is on the path. It is imported once,
at build time (componentize-py snapshots the initialised interpreter), so
the author's module-level code runs then too, without the host.

Per call it reads the host's event (a ``tessera:plugin@0.2.0`` ``event``
resource lent for the call) in one host call, ``to_json()``, parses it with
``json.loads`` and builds a :class:`tessera_plugin.Event` from it,
runs the author's stage function with a fresh :class:`tessera_plugin.Api`,
and returns the WIT ``changes`` or raises ``Err(denial)``, which
componentize-py turns into the ``result`` error.

Output routing: ``print`` (standard output), the ``logging`` module and
``warnings`` go to the host's ``log`` import, at ``info``, at the record's
level and at ``warn``. Standard error is left alone: the host captures it
(1 KiB) into the trace, at ``error``, and does not reuse an instance that
wrote to it. An exception in the author's code is reported there once, in at
most ``_REPORT_LIMIT`` bytes; re-raising it makes componentize-py trap.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import traceback
import warnings
from typing import Any, Optional, TextIO

import plugin as _author  # the author's module: DIR/plugin.py
from componentize_py_types import Err
from wit_world.imports import host, types
from wit_world.imports import store as cache_store

import tessera_plugin as sdk
from tessera_plugin._host import HostApi, HostEvent, HostTokenState, HostUser
from tessera_plugin._views import (
    api_view,
    client_view,
    request_view,
    token_state_view,
    transaction_view,
    user_view,
)

# WIT value cases and the classes componentize-py generates for them.
_VALUE_CLASSES: dict[str, type] = {
    "null": types.Value_Null,
    "boolean": types.Value_Boolean,
    "integer": types.Value_Integer,
    "number": types.Value_Number,
    "text": types.Value_Text,
    "text-list": types.Value_TextList,
    "json": types.Value_Json,
}

# Bytes of a failure report. The host keeps 1 KiB of standard error, and the
# componentize-py runtime adds its own panic line (about 230 bytes) after ours.
_REPORT_LIMIT = 700


# --- host data to SDK views -------------------------------------------------
#
# The JSON of ``event.to_json()``: its shape is ``_host.HostEvent`` (and
# plugin-sdk/event.schema.json), and the views and the functions that read
# each part into one are ``_views.py``: all three generated from the WIT, so
# a field the WIT gains reaches the views without an edit here.


def _api(api: Optional[HostApi]) -> Optional[sdk.ApiInfo]:
    return None if api is None else api_view(api)


def _user(user: Optional[HostUser]) -> Optional[sdk.User]:
    return None if user is None else user_view(user)


def _token(token: Optional[HostTokenState]) -> sdk.TokenState:
    return sdk.TokenState() if token is None else token_state_view(token)


def credentials_exchange_event(lent: Any) -> sdk.Event:
    """The SDK view of the host's event at the ``credentials-exchange`` stage."""
    data: HostEvent = json.loads(lent.to_json())
    return sdk.Event(
        stage="credentials-exchange",
        client=client_view(data["client"]),
        api=_api(data["api"]),
        request=request_view(data["request"]),
        transaction=transaction_view(data["transaction"]),
        access_token=_token(data["access_token"]),
        config=sdk.Config(host.config),
        secrets=sdk.Secrets(host.secret),
    )


def authorize_event(lent: Any) -> sdk.Event:
    """The SDK view of the host's event at the ``authorize`` stage."""
    data: HostEvent = json.loads(lent.to_json())
    return sdk.Event(
        stage="authorize",
        client=client_view(data["client"]),
        api=_api(data["api"]),
        user=_user(data["user"]),
        request=request_view(data["request"]),
        transaction=transaction_view(data["transaction"]),
        access_token=_token(data["access_token"]),
        id_token=_token(data["id_token"]),
        config=sdk.Config(host.config),
        secrets=sdk.Secrets(host.secret),
    )


# --- SDK results to host data -----------------------------------------------


def _wit_value(value: sdk.WitValue) -> Any:
    case, payload = value
    cls = _VALUE_CLASSES[case]
    return cls() if case == "null" else cls(payload)


def _wit_claims(claims: dict[str, sdk.WitValue]) -> list[tuple[str, Any]]:
    return [(name, _wit_value(value)) for name, value in claims.items()]


def changes(api: sdk.Api) -> types.Changes:
    """The WIT ``changes`` an :class:`sdk.Api` collected."""
    return types.Changes(
        access_token_claims=_wit_claims(api.access_token._claims),
        id_token_claims=_wit_claims(api.id_token._claims),
        add_scopes=list(api.access_token._added),
        remove_scopes=list(api.access_token._removed),
    )


def denial(denial: sdk.Denial) -> types.Denial:
    """The WIT ``denial`` for an :class:`sdk.Denial`."""
    return types.Denial(code=types.DenyCode[denial.code.upper()], description=denial.description)


def host_log(level: str, message: str) -> None:
    """Writes a line to the host log; ``level`` is one of :data:`sdk.LEVELS`."""
    host.log(types.LogLevel[level.upper()], message)


# --- output routing and failure reports ---------------------------------------


class _HostLines(io.TextIOBase):
    """A text stream that sends each line to the host log at one level."""

    def __init__(self, level: str) -> None:
        super().__init__()
        self._level = level
        self._pending = ""

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        *lines, self._pending = (self._pending + text).split("\n")
        for line in lines:
            host_log(self._level, line)
        return len(text)

    def flush(self) -> None:
        if self._pending:
            line, self._pending = self._pending, ""
            host_log(self._level, line)


class _HostHandler(logging.Handler):
    """A ``logging`` handler that writes records to the host log."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            host_log(_level_of(record.levelno), self.format(record))
        except Exception:
            self.handleError(record)


def _level_of(levelno: int) -> str:
    if levelno < logging.DEBUG:
        return "trace"
    if levelno < logging.INFO:
        return "debug"
    if levelno < logging.WARNING:
        return "info"
    if levelno < logging.ERROR:
        return "warn"
    return "error"


def failure_report(error: BaseException) -> str:
    """A short description of ``error``: its type and message, then the
    innermost frames as ``file:line in function``, at most ``_REPORT_LIMIT``
    bytes of UTF-8."""
    head = "".join(traceback.format_exception_only(type(error), error)).strip()
    # lookup_lines=False: no source files to read inside the component.
    stack = traceback.StackSummary.extract(traceback.walk_tb(error.__traceback__), lookup_lines=False)
    frames = [f"  at {_short_path(frame.filename)}:{frame.lineno} in {frame.name}" for frame in stack]
    text = "\n".join([f"plugin failed: {head}", *reversed(frames)])
    encoded = text.encode("utf-8")
    if len(encoded) <= _REPORT_LIMIT:
        return text
    return encoded[: _REPORT_LIMIT - 3].decode("utf-8", "ignore") + "..."


def _short_path(path: str) -> str:
    # componentize-py mounts each Python path entry at /0, /1, ...
    parts = path.split("/")
    if len(parts) > 2 and parts[0] == "" and parts[1].isdigit():
        return "/".join(parts[2:])
    return path


_reported: Optional[BaseException] = None


def _report(error: BaseException) -> None:
    global _reported
    _reported = error
    sys.stderr.write(failure_report(error) + "\n")
    sys.stderr.flush()


def _excepthook(kind: type, error: BaseException, tb: Any) -> None:
    # The runtime prints an uncaught exception through sys.excepthook before
    # trapping; a full traceback could overflow the host's 1 KiB of stderr.
    if error is not _reported:
        _report(error)


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Optional[TextIO] = None,
    line: Optional[str] = None,
) -> None:
    host_log("warn", f"{_short_path(filename)}:{lineno}: {category.__name__}: {message}")


def _route_output() -> None:
    sys.stdout = _HostLines("info")
    sys.excepthook = _excepthook
    warnings.showwarning = _show_warning
    root = logging.getLogger()
    root.handlers[:] = [_HostHandler()]
    root.setLevel(logging.NOTSET)


# --- the exports ------------------------------------------------------------


class _HostCache(sdk.CacheStore):
    """The plugin's cache in the host (``tessera:cache/store``)."""

    def get(self, key: str) -> Optional[sdk.CacheEntry]:
        entry = cache_store.get(key)
        return None if entry is None else sdk.CacheEntry(entry.value, entry.expires_at)

    def set(self, key: str, value: str, ttl_ms: Optional[int]) -> int:
        try:
            return cache_store.set(key, value, ttl_ms)
        except Err as refused:
            raise ValueError(f"api.cache.set({key!r}) stored nothing: {refused.value}") from None

    def delete(self, key: str) -> bool:
        return cache_store.delete(key)


_CACHE = _HostCache()


def _run(function_name: str, event: sdk.Event) -> types.Changes:
    api = sdk.Api(host_log, _CACHE)
    try:
        sdk.run_stage(getattr(_author, function_name), event, api)
    except BaseException as error:
        _report(error)
        raise
    finally:
        sys.stdout.flush()
    if api.denial is not None:
        raise Err(denial(api.denial))
    return changes(api)


class WitWorld:
    """The world implementation componentize-py looks for. It defines both
    stages; the world the build picks exports only those the author wrote."""

    def on_credentials_exchange(self, event: Any) -> types.Changes:
        """Runs ``plugin.on_credentials_exchange``."""
        return _run("on_credentials_exchange", credentials_exchange_event(event))

    def on_authorize(self, event: Any) -> types.Changes:
        """Runs ``plugin.on_authorize``."""
        return _run("on_authorize", authorize_event(event))


_route_output()
