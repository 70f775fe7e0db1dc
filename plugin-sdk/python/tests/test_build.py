"""The build script's checks, which run before componentize-py."""

import contextlib
import io
import sys
import tempfile
import textwrap
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tessera_plugin import build  # noqa: E402


class BuildChecksTest(unittest.TestCase):
    def setUp(self) -> None:
        self._dir = tempfile.TemporaryDirectory()
        self.folder = Path(self._dir.name)
        self.source = self.folder / "plugin.py"

    def tearDown(self) -> None:
        self._dir.cleanup()

    def write(self, code: str) -> Path:
        self.source.write_text(textwrap.dedent(code))
        return self.source

    def test_detects_the_stages_and_picks_the_world(self) -> None:
        cases = {
            "def on_credentials_exchange(event, api): pass\n": "credentials-exchange",
            "def on_authorize(event, api, extra=None): pass\n": "authorize",
            "def on_authorize(event, api): pass\ndef on_credentials_exchange(e, a): pass\n": "plugin",
            "from helpers import on_authorize\n": "authorize",
            "def f(event, api): pass\non_credentials_exchange = f\n": "credentials-exchange",
        }
        for code, world in cases.items():
            with self.subTest(code=code):
                source = self.write(code)
                functions = build.stage_functions(source)
                self.assertEqual(build.choose_world(source, functions), world)

    def test_no_stage_function_names_the_file_and_the_functions(self) -> None:
        source = self.write("def on_login(event, api): pass\n")
        with self.assertRaisesRegex(build.BuildError, "plugin.py defines no stage function; define on_credentials_exchange"):
            build.choose_world(source, build.stage_functions(source))

    def test_syntax_errors_name_file_and_line(self) -> None:
        source = self.write("x = 1\ndef on_authorize(event, api)\n    pass\n")
        with self.assertRaisesRegex(build.BuildError, r"plugin.py:2:\d+: syntax error"):
            build.stage_functions(source)

    def test_async_stages_are_refused_with_their_line(self) -> None:
        source = self.write("\n\nasync def on_authorize(event, api): pass\n")
        with self.assertRaisesRegex(build.BuildError, "plugin.py:3: on_authorize is an async def"):
            build.stage_functions(source)

    def test_stages_must_take_event_and_api(self) -> None:
        for signature in ("(event)", "(event, api, extra)", "(event, api, *, key)"):
            with self.subTest(signature=signature):
                source = self.write(f"def on_credentials_exchange{signature}: pass\n")
                with self.assertRaisesRegex(build.BuildError, "plugin.py:1: on_credentials_exchange must take two arguments"):
                    build.stage_functions(source)
        self.write("def on_credentials_exchange(*args): pass\n")
        self.assertEqual(build.stage_functions(self.source), ["on_credentials_exchange"])

    def test_wit_is_found_in_the_repository_or_given(self) -> None:
        files = build.find_wit(None)
        self.assertEqual([f.name for f in files], ["plugin.wit", "cache.wit", "egress.wit"])
        self.assertTrue(all(f.is_file() for f in files))
        with self.assertRaisesRegex(build.BuildError, "--wit nowhere: no nowhere/plugin.wit or nowhere/cache.wit or nowhere/egress.wit"):
            build.find_wit("nowhere")

    def test_the_world_includes_the_stage_world_and_imports_egress(self) -> None:
        wit = build.write_wit(self.folder, build.find_wit(None))
        world = (wit / "world.wit").read_text()
        self.assertIn("world credentials-exchange {\n    include tessera:plugin/credentials-exchange@0.2.0;", world)
        self.assertIn("import tessera:cache/store@0.1.0;", world)
        self.assertIn("import tessera:egress/http@0.1.0;", world)
        self.assertTrue((wit / "deps" / "egress" / "egress.wit").is_file())

    def test_main_reports_a_missing_plugin_py_and_exits_1(self) -> None:
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr):
            status = build.main([str(self.folder), "--out", str(self.folder / "p.wasm")])
        self.assertEqual(status, 1)
        self.assertIn("plugin.py: not found; a Python plugin folder holds plugin.py", stderr.getvalue())
        self.assertFalse((self.folder / "p.wasm").exists())


if __name__ == "__main__":
    unittest.main()
