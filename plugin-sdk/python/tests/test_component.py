"""The component entry, against the bindings componentize-py generates.

Runs only where componentize-py is installed (it generates the bindings);
elsewhere the tests are skipped. The author's ``plugin`` module is a stand-in
whose stage functions each test sets.
"""

import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import types
import unittest
import warnings
from pathlib import Path
from typing import Any, Callable

SDK = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(SDK))

try:
    import componentize_py
except ImportError:
    # CI sets TESSERA_REQUIRE_POLYGLOT: there a missing tool is a failure.
    if os.environ.get("TESSERA_REQUIRE_POLYGLOT"):
        raise
    componentize_py = None

import tessera_plugin  # noqa: E402
from tessera_plugin import build  # noqa: E402


@unittest.skipIf(componentize_py is None, "componentize-py is not installed")
class ComponentEntryTest(unittest.TestCase):
    component: Any
    t: Any
    Err: Any
    logs: list[tuple[str, str]]
    cached: dict[str, Any]
    stage: Callable[[Any, Any], None]

    @classmethod
    def setUpClass(cls) -> None:
        cls._bindings = tempfile.TemporaryDirectory()
        # The world the build compiles: the stage world with the capabilities.
        wit = build.write_wit(Path(cls._bindings.name) / "src", build.find_wit(None))
        componentize_py.generate_bindings(
            wit_path=[str(wit)],
            worlds=["plugin"],
            features=[],
            all_features=False,
            world_module=None,
            output_dir=str(Path(cls._bindings.name) / "out"),
            import_interface_names=[],
            export_interface_names=[],
            full_names=False,
        )
        root = logging.getLogger()
        cls._saved = (
            list(sys.path),
            set(sys.modules),
            sys.stdout,
            sys.excepthook,
            warnings.showwarning,
            list(root.handlers),
            root.level,
        )
        sys.path.insert(0, str(Path(cls._bindings.name) / "out"))

        author = types.ModuleType("plugin")
        author.on_credentials_exchange = lambda event, api: cls.stage(event, api)
        author.on_authorize = lambda event, api: cls.stage(event, api)
        sys.modules["plugin"] = author

        from componentize_py_types import Err
        from wit_world.imports import host, store
        from wit_world.imports import types as t

        host.log = lambda level, message: cls.logs.append((level.name.lower(), message))
        host.config = {"namespace": "https://n/", "keys": '["a"]'}.get
        host.secret = {"token": "hunter2"}.get
        cls.cached: dict[str, Any] = {}

        def cache_set(key: str, value: str, ttl_ms: Any) -> int:
            if len(value) > 4096:
                raise Err("the value has too many bytes")
            cls.cached[key] = store.Entry(value=value, expires_at=42)
            return 42

        store.get = cls.cached.get
        store.set = cache_set
        store.delete = lambda key: cls.cached.pop(key, None) is not None
        import tessera_plugin._component as component

        cls.component, cls.t, cls.Err = component, t, Err

    @classmethod
    def tearDownClass(cls) -> None:
        path, modules, stdout, excepthook, showwarning, handlers, level = cls._saved
        sys.path[:] = path
        for name in set(sys.modules) - modules:
            del sys.modules[name]
        del tessera_plugin._component
        sys.stdout, sys.excepthook, warnings.showwarning = stdout, excepthook, showwarning
        root = logging.getLogger()
        root.handlers[:] = handlers
        root.setLevel(level)
        cls._bindings.cleanup()

    def setUp(self) -> None:
        type(self).logs = []

    def run_stage(self, stage: Callable[[Any, Any], None]) -> Any:
        type(self).stage = staticmethod(stage)
        return self.component.WitWorld().on_credentials_exchange(self.exchange_event())

    @staticmethod
    def lent(data: dict[str, Any]) -> Any:
        """The host's event as a plugin gets it: a resource read through
        ``to_json()`` (plugin-sdk/event.schema.json)."""
        return types.SimpleNamespace(to_json=lambda: json.dumps(data))

    @staticmethod
    def exchange_data() -> dict[str, Any]:
        return {
            "client": {
                "id": "acme",
                "name": "ACME",
                "app_type": "regular_web",
                "metadata": {"n": None, "b": True, "i": -3, "f": 2.5, "s": "x", "l": ["a", "b"], "j": {"rps": 5}},
            },
            "api": {"identifier": "https://orders.example.com", "name": "Orders", "scopes": ["read"], "metadata": {}},
            "user": None,
            "request": {
                "ip": "127.0.0.1",
                "user_agent": None,
                "hostname": "issuer",
                "method": "POST",
                "params": [["scope", "read"], ["scope", "write"]],
            },
            "transaction": {
                "id": "jti-1",
                "grant_type": "client_credentials",
                "requested_scopes": ["read"],
                "granted_scopes": ["read"],
                "redirect_uri": None,
                "requested_audience": "https://orders.example.com",
            },
            "access_token": {"claims": {"c": 1}, "scopes": ["read"]},
            "id_token": None,
        }

    def exchange_event(self) -> Any:
        return self.lent(self.exchange_data())

    def test_host_events_become_sdk_events(self) -> None:
        event = self.component.credentials_exchange_event(self.exchange_event())
        self.assertEqual(event.stage, "credentials-exchange")
        self.assertEqual(event.client.app_type, "regular_web")
        self.assertEqual(
            event.client.metadata,
            {"n": None, "b": True, "i": -3, "f": 2.5, "s": "x", "l": ["a", "b"], "j": {"rps": 5}},
        )
        self.assertEqual(event.request.params, {"scope": "read"})
        self.assertEqual(event.access_token.claims, {"c": 1})
        self.assertEqual(event.config.json("keys"), ["a"])
        self.assertEqual(event.secrets["token"], "hunter2")

    def test_authorize_events_carry_the_user_and_an_absent_api(self) -> None:
        data = self.exchange_data()
        data["api"] = None
        data["user"] = {
            "id": "user-1",
            "email": "ada@example.com",
            "email_verified": True,
            "name": None,
            "app_metadata": {"roles": ["admin"]},
            "user_metadata": {},
        }
        data["id_token"] = {"claims": {"n": 1}, "scopes": []}
        event = self.component.authorize_event(self.lent(data))
        self.assertIsNone(event.api)
        self.assertEqual(event.user.app_metadata, {"roles": ["admin"]})
        self.assertTrue(event.user.email_verified)
        self.assertEqual(event.id_token.claims, {"n": 1})

    def test_changes_become_generated_records(self) -> None:
        t = self.t

        def stage(event: Any, api: Any) -> None:
            api.access_token.set_custom_claim("a", {"x": 1})
            api.access_token.remove_custom_claim("b")
            api.access_token.set_custom_claim("c", ["eu"])
            api.id_token.set_custom_claim("d", 7)
            api.access_token.add_scope("s1")
            api.access_token.remove_scope("s2")

        changes = self.run_stage(stage)
        self.assertEqual(
            changes.access_token_claims,
            [("a", t.Value_Json('{"x":1}')), ("b", t.Value_Null()), ("c", t.Value_TextList(["eu"]))],
        )
        self.assertEqual(changes.id_token_claims, [("d", t.Value_Integer(7))])
        self.assertEqual((changes.add_scopes, changes.remove_scopes), (["s1"], ["s2"]))

    def test_api_cache_reaches_the_hosts_store(self) -> None:
        seen: list[Any] = []

        def stage(event: Any, api: Any) -> None:
            seen.append(api.cache.set("k", "v", ttl=60))
            seen.append(api.cache.get("k"))
            try:
                api.cache.set("big", "x" * 5000)
            except ValueError as refused:
                seen.append(str(refused))
            seen.append(api.cache.delete("k"))

        self.run_stage(stage)
        self.assertEqual(seen[:2], [42, tessera_plugin.CacheEntry("v", 42)])
        self.assertEqual(seen[2], "api.cache.set('big') stored nothing: the value has too many bytes")
        self.assertTrue(seen[3])

    def test_a_denial_is_raised_as_the_result_error_and_drops_changes(self) -> None:
        def stage(event: Any, api: Any) -> None:
            api.access_token.set_custom_claim("a", 1)
            api.access.deny("invalid-target", "no such API")

        with self.assertRaises(self.Err) as raised:
            self.run_stage(stage)
        self.assertEqual(raised.exception.value, self.t.Denial(self.t.DenyCode.INVALID_TARGET, "no such API"))

    def test_an_exception_is_reported_briefly_and_re_raised(self) -> None:
        def stage(event: Any, api: Any) -> None:
            raise ValueError("bad config " + "x" * 2000)

        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), self.assertRaisesRegex(ValueError, "bad config"):
            self.run_stage(stage)
        report = stderr.getvalue()
        self.assertTrue(report.startswith("plugin failed: ValueError: bad config xxx"), report)
        self.assertLessEqual(len(report.encode()), 701)
        self.assertEqual(self.logs, [])

        frames = self.component.failure_report(self._error_with_frames())
        self.assertIn("in innermost", frames.splitlines()[1])

    @staticmethod
    def _error_with_frames() -> BaseException:
        def innermost() -> None:
            raise KeyError("k")

        try:
            innermost()
        except KeyError as error:
            return error
        raise AssertionError("unreachable")

    def test_print_logging_and_warnings_go_to_the_host_log(self) -> None:
        def stage(event: Any, api: Any) -> None:
            print("one\ntwo", end="")
            logging.getLogger("x").debug("dbg %d", 1)
            logging.getLogger("x").warning("careful")
            warnings.warn("old", DeprecationWarning)

        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = self.component._show_warning
            self.run_stage(stage)
        self.assertEqual(self.logs[0], ("info", "one"))
        self.assertEqual(self.logs[1:3], [("debug", "dbg 1"), ("warn", "careful")])
        self.assertEqual(self.logs[3][0], "warn")
        self.assertIn("DeprecationWarning: old", self.logs[3][1])
        self.assertEqual(self.logs[4], ("info", "two"))


if __name__ == "__main__":
    unittest.main()
