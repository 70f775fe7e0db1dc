"""Build a Python plugin folder into a Tessera component.

Usage::

    python -m tessera_plugin.build DIR [--out FILE.wasm] [--wit PATH]

``DIR/plugin.py`` defines ``on_credentials_exchange(event, api)``,
``on_authorize(event, api)`` or both. The build reads (without running) the
module to see which, picks the WIT world (``credentials-exchange``,
``authorize`` or, for both, ``plugin``) and runs componentize-py with
:mod:`tessera_plugin._component` as the app. The component imports only
``tessera:plugin/*``, ``tessera:cache/store`` (``api.cache``),
``tessera:egress/http`` (:mod:`tessera_plugin.http`: outgoing requests where
the plugin's ``egress`` allows) and WASI 0.2 interfaces, which the host
links with nothing granted.

The WIT comes from ``--wit DIR`` (holding ``plugin.wit``, ``cache.wit`` and
``egress.wit``), else ``wit/`` next to this file (a vendored SDK), else the
Tessera repository's ``wit/0.2.0``, ``wit/cache/0.1.0`` and
``wit/egress/0.1.0``. The build writes the world it compiles, which
includes ``tessera:plugin@0.2.0``'s stage world and imports
``tessera:cache@0.1.0`` and ``tessera:egress@0.1.0``, into
``DIR/.tessera/wit/``.
The component is written next to ``--out`` first and renamed into place, so
a watching issuer never loads half a file.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from . import STAGES, __version__

HERE = Path(__file__).resolve().parent

#: The componentize-py release this SDK is written against.
COMPONENTIZE_PY = "0.25.1"

_FUNCTIONS = tuple(STAGES.values())


class BuildError(Exception):
    """A build failure, with a message for the plugin author."""


def stage_functions(source: Path) -> list[str]:
    """The stage functions ``source`` defines at module level, in
    :data:`STAGES` order. Raises :class:`BuildError` (naming file and line)
    for syntax errors, ``async def`` stages and stages that cannot take
    ``(event, api)``."""
    try:
        tree = ast.parse(source.read_bytes(), filename=str(source))
    except SyntaxError as error:
        raise BuildError(f"{source}:{error.lineno}:{error.offset}: syntax error: {error.msg}") from None
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.AsyncFunctionDef) and node.name in _FUNCTIONS:
            raise BuildError(
                f"{source}:{node.lineno}: {node.name} is an async def; "
                "stage functions are plain functions (def)"
            )
        if isinstance(node, ast.FunctionDef) and node.name in _FUNCTIONS:
            _check_arguments(source, node)
            found.add(node.name)
        elif isinstance(node, ast.Assign):
            found.update(t.id for t in node.targets if isinstance(t, ast.Name) and t.id in _FUNCTIONS)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            if node.target.id in _FUNCTIONS and node.value is not None:
                found.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            found.update(
                alias.asname or alias.name
                for alias in node.names
                if (alias.asname or alias.name) in _FUNCTIONS
            )
    return [name for name in _FUNCTIONS if name in found]


def _check_arguments(source: Path, node: ast.FunctionDef) -> None:
    args = node.args
    positional = len(args.posonlyargs) + len(args.args)
    required = positional - len(args.defaults)
    required_keywords = sum(default is None for default in args.kw_defaults)
    if (positional < 2 and args.vararg is None) or required > 2 or required_keywords:
        raise BuildError(
            f"{source}:{node.lineno}: {node.name} must take two arguments, (event, api)"
        )


def choose_world(source: Path, functions: Sequence[str]) -> str:
    """The WIT world exporting exactly ``functions``."""
    if not functions:
        raise BuildError(
            f"{source} defines no stage function; define "
            "on_credentials_exchange(event, api), on_authorize(event, api) or both"
        )
    if len(functions) == len(STAGES):
        return "plugin"
    return next(stage for stage, function in STAGES.items() if function == functions[0])


#: The WIT packages a Python plugin is built against, by file name.
WIT_FILES = ("plugin.wit", "cache.wit", "egress.wit")


def find_wit(explicit: Optional[str]) -> list[Path]:
    """The WIT files to build against: ``tessera:plugin``'s, ``tessera:cache``'s
    and ``tessera:egress``'s."""
    if explicit is not None:
        folder = Path(explicit)
        files = [folder / name for name in WIT_FILES]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise BuildError(f"--wit {explicit}: no {' or '.join(missing)}")
        return files
    repository = HERE.parent.parent.parent / "wit"
    candidates = [
        [HERE / "wit" / name for name in WIT_FILES],
        [
            repository / "0.2.0" / "plugin.wit",
            repository / "cache" / "0.1.0" / "cache.wit",
            repository / "egress" / "0.1.0" / "egress.wit",
        ],
    ]
    for files in candidates:
        if all(f.is_file() for f in files):
            return files
    raise BuildError(
        "no WIT found (looked for "
        + " and ".join(", ".join(str(f) for f in files) for files in candidates)
        + "); pass --wit DIR"
    )


def write_wit(folder: Path, files: Sequence[Path]) -> Path:
    """Writes the build's WIT folder: a world per stage that includes
    ``tessera:plugin``'s and imports ``tessera:cache/store`` and
    ``tessera:egress/http``, with the packages under ``deps/``."""
    wit = folder / ".tessera" / "wit"
    for file in files:
        target = wit / "deps" / file.stem / file.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.read_bytes())
    worlds = "".join(
        f"\nworld {world} {{\n    include tessera:plugin/{world}@0.2.0;\n"
        "    import tessera:cache/store@0.1.0;\n    import tessera:egress/http@0.1.0;\n}\n"
        for world in ("credentials-exchange", "authorize", "plugin")
    )
    (wit / "world.wit").write_text(
        "// Written by tessera_plugin.build on every build: the component's worlds.\n"
        "package tessera:py-plugin;\n" + worlds
    )
    return wit


def componentize(wit: Path, world: str, python_path: list[Path], out: Path) -> str:
    """Runs componentize-py through its Python API; returns its version."""
    try:
        import componentize_py
    except ImportError:
        raise BuildError(
            f"componentize-py is not installed for {sys.executable}; install it with "
            f"`{sys.executable} -m pip install componentize-py=={COMPONENTIZE_PY}` "
            "(or -r requirements.txt)"
        ) from None
    version = importlib.metadata.version("componentize-py")
    if version != COMPONENTIZE_PY:
        step(f"warning: componentize-py {version}; this SDK is written for {COMPONENTIZE_PY}")
    try:
        componentize_py.componentize(
            wit_path=[str(wit)],
            worlds=[world],
            features=[],
            all_features=False,
            world_module=None,
            python_path=[str(p) for p in python_path],
            module_worlds=[],
            app_name="tessera_plugin._component",
            output_path=str(out),
            stub_wasi=False,
            import_interface_names=[],
            export_interface_names=[],
            full_names=False,
            intersect_world=None,
        )
    except TypeError as error:
        raise BuildError(
            f"componentize-py {version} has an unexpected Python API ({error}); "
            f"install componentize-py=={COMPONENTIZE_PY}"
        ) from None
    except AssertionError as error:
        # Drop the Rust backtrace (present when RUST_BACKTRACE is set).
        message = str(error).split("\nStack backtrace:")[0].rstrip()
        # componentize-py mounts python path entry N at /N while it runs the app.
        for index, path in enumerate(python_path):
            message = message.replace(f'"/{index}/', f'"{path}/')
        raise BuildError(f"componentize-py failed:\n{message}") from None
    return version


def build(folder: Path, out: Path, wit_arg: Optional[str]) -> None:
    """Builds ``folder`` into ``out``, printing one line per step."""
    source = folder / "plugin.py"
    if not source.is_file():
        raise BuildError(
            f"{source}: not found; a Python plugin folder holds plugin.py defining "
            "on_credentials_exchange(event, api) and/or on_authorize(event, api)"
        )
    functions = stage_functions(source)
    world = choose_world(source, functions)
    step(f"{source} defines {' and '.join(functions)}: world {world!r}")

    wit = write_wit(folder, find_wit(wit_arg))
    step(f"WIT {wit}")

    python_path = list(dict.fromkeys([folder.resolve(), HERE.parent]))
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    step(f"building {out} with componentize-py (about 10 s)")
    started = time.monotonic()
    try:
        version = componentize(wit, world, python_path, partial)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)
    size = out.stat().st_size / 1e6
    seconds = time.monotonic() - started
    step(f"wrote {out} ({size:.1f} MB; componentize-py {version}, tessera-plugin {__version__}) in {seconds:.1f} s")


def step(message: str) -> None:
    """Prints one progress line."""
    print(f"tessera_plugin.build: {message}", flush=True)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m tessera_plugin.build",
        description="Build a Python plugin folder (plugin.py) into a Tessera component.",
    )
    parser.add_argument("dir", type=Path, help="the plugin folder, holding plugin.py")
    parser.add_argument("--out", type=Path, help="the component to write (default: DIR/plugin.wasm)")
    parser.add_argument("--wit", help="the WIT file or folder (default: found next to the SDK)")
    args = parser.parse_args(argv)
    try:
        build(args.dir, args.out or args.dir / "plugin.wasm", args.wit)
    except BuildError as error:
        print(f"tessera_plugin.build: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
