"""The web app's own gates, run by the project's one test command: ESLint over `web/`,
Vitest for its pure logic (`web/test/`), the editor's templates compiled by the server's
own compiler, and the committed bundle in `src/tailwinds/web/static/` being byte for byte
what `npm run build` makes from `web/` (the bundle stays committed so that installing from
PyPI needs no Node.js; this test is what keeps it honest).

`node_modules` comes from `npm ci` (the committed lockfile) and is kept between runs while
the lockfile, `package.json` and Node's version are unchanged (a stamp file holds their
hash), so a warm run costs only the tools themselves."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tailwinds.engine.compile import compile_flow
from tailwinds.errors import InvalidRequest
from tests.requirements import require_command

ROOT = Path(__file__).parents[2]
WEB = ROOT / "web"
STATIC = ROOT / "src" / "tailwinds" / "web" / "static"
STAMP = WEB / "node_modules" / ".tailwinds-installed"
CACHE = WEB / "node_modules" / ".cache"
# generous: `npm ci` on a cold cache and a build on 2 shared cores
NPM_CI_TIMEOUT_S = 480
TOOL_TIMEOUT_S = 240

HOW = "`apt-get install nodejs npm` (scripts/install-test-deps): Node.js 20 or later"

pytestmark = pytest.mark.timeout(NPM_CI_TIMEOUT_S + TOOL_TIMEOUT_S)


def require(tool: str) -> str:
    """The path of `tool` (node, npm): skip naming it, or fail under CI=true."""
    return require_command(tool, HOW)


def run(command: list[str], *, timeout_s: float) -> str:
    """Run `command` in web/; fail the test with its output when it exits non-zero."""
    env = {**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"}
    try:
        result = subprocess.run(
            command, cwd=WEB, env=env, capture_output=True, text=True, timeout=timeout_s
        )
    except subprocess.TimeoutExpired as exc:
        # bytes here whatever `text` says (subprocess docs, TimeoutExpired.output)
        output = b"\n".join(part for part in (exc.stdout, exc.stderr) if part)
        pytest.fail(
            f"`{' '.join(command)}` in web/ took over {timeout_s} s:\n"
            + output.decode(errors="replace"),
            pytrace=False,
        )
    if result.returncode != 0:
        pytest.fail(
            f"`{' '.join(command)}` in web/ exited {result.returncode}:\n"
            f"{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    return result.stdout


def installed_state(node: str) -> str:
    """What node_modules was installed from: the lockfile, package.json and Node's version."""
    digest = hashlib.sha256()
    for name in ("package-lock.json", "package.json"):
        digest.update((WEB / name).read_bytes())
    digest.update(subprocess.run([node, "--version"], capture_output=True).stdout)
    return digest.hexdigest()


@pytest.fixture(scope="module")
def node() -> str:
    return require("node")


@pytest.fixture(scope="module")
def web_bin(node: str) -> Path:
    """web/node_modules/.bin, installed by `npm ci` unless already installed from the same
    lockfile."""
    npm = require("npm")
    state = installed_state(node)
    if not (STAMP.exists() and STAMP.read_text() == state):
        run([npm, "ci", "--no-audit", "--no-fund"], timeout_s=NPM_CI_TIMEOUT_S)
        STAMP.write_text(state)
    return WEB / "node_modules" / ".bin"


def test_eslint_is_clean(web_bin: Path) -> None:
    # the cache (by file content and config) lives in node_modules: a new install drops it
    cache = ["--cache", "--cache-strategy", "content", "--cache-location", str(CACHE / "eslint")]
    run([str(web_bin / "eslint"), *cache, "--max-warnings", "0", "."], timeout_s=TOOL_TIMEOUT_S)


def test_vitest_passes(web_bin: Path) -> None:
    output = run([str(web_bin / "vitest"), "run"], timeout_s=TOOL_TIMEOUT_S)
    # a config that stopped finding some test files would pass on the rest
    unrun = [p.name for p in (WEB / "test").glob("*.test.js") if f"test/{p.name}" not in output]
    assert not unrun, f"vitest ran none of {unrun}:\n{output}"


def test_committed_bundle_is_the_build_of_web(web_bin: Path, tmp_path: Path) -> None:
    out = tmp_path / "static"
    run(
        [str(web_bin / "vite"), "build", "--outDir", str(out), "--emptyOutDir"],
        timeout_s=TOOL_TIMEOUT_S,
    )
    built, committed = files_under(out), files_under(STATIC)
    assert built, "the build wrote nothing"
    differences = [
        *(f"missing from the committed bundle: {name}" for name in sorted(built - committed)),
        *(f"not made by the build: {name}" for name in sorted(committed - built)),
        *(
            f"differs from the build: {name}"
            for name in sorted(built & committed)
            if (out / name).read_bytes() != (STATIC / name).read_bytes()
        ),
    ]
    assert not differences, (
        "src/tailwinds/web/static/ is not what `npm run build` makes from web/: run "
        "`cd web && npm ci && npm run build` and commit src/tailwinds/web/static/\n"
        + "\n".join(differences)
    )


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


# what a template leaves for the user to fill in the editor: template → node id → inputs
USER_FILLS = {"docs": {"retriever_0": {"documentStoreId": "a-document-store-id"}}}


def test_editor_templates_compile_on_the_server(node: str) -> None:
    """Each template the chatflow list offers is a flow the server saves, once the user has
    filled what it leaves open; until then, the save error names that input of that node
    (which the editor marks)."""
    script = (
        "import { TEMPLATES } from './src/templates.js';console.log(JSON.stringify(TEMPLATES));"
    )
    templates: dict[str, Any] = json.loads(
        run([node, "--input-type=module", "-e", script], timeout_s=TOOL_TIMEOUT_S)
    )
    assert set(templates) == {"local", "openai", "docs", "agent"}
    import tailwinds.nodes  # noqa: F401  (fills the registry the compiler reads)

    rejected = {}
    for key, template in templates.items():
        flow_data = template["flowData"]
        fills = USER_FILLS.get(key, {})
        if fills:
            with pytest.raises(InvalidRequest) as left_open:
                compile_flow(flow_data)
            node_id, inputs = next(iter(fills.items()))
            assert f"nodes[{node_id}].inputs.{next(iter(inputs))}" in str(left_open.value)
        for spec in flow_data["nodes"]:
            spec["inputs"].update(fills.get(spec["id"], {}))
        try:
            compile_flow(flow_data)
        except InvalidRequest as exc:
            rejected[key] = str(exc)
    assert not rejected, rejected
