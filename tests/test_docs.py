"""Every Python block of the README and of the docs pages runs.

The blocks of one page run in order in one namespace, as a reader would
paste them, in a fresh folder that holds what the pages say they start
from: a tiny transformers checkpoint in `conv-bert-small/`. Markers and
shape checks: `tests/docs_blocks.py`.
"""

import os
import re
import shutil

import pytest
from docs_blocks import FIXTURES
from docs_blocks import PAGES
from docs_blocks import python_blocks
from docs_blocks import read
from docs_blocks import run_block
from serving_standin import ModelServer

CASES = [(page, *block) for page in PAGES for block in python_blocks(read(page))]


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """Per page: its folder and namespace, and whether a block failed."""
    return {}


@pytest.fixture(scope="module")
def model_server():
    servers = {}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("path, line, code, marker", CASES, ids=[f"{c[0]}:{c[1]}" for c in CASES])
def test_documentation_block_runs(
    path, line, code, marker, pages, model_server, tmp_path_factory, monkeypatch
):
    if path not in pages:
        folder = tmp_path_factory.mktemp(re.sub(r"\W", "_", path))
        shutil.copytree(os.path.join(FIXTURES, "tiny"), folder / "conv-bert-small")
        pages[path] = {"folder": folder, "namespace": {"__name__": "__docs__"}, "failed": None}
    page = pages[path]
    if marker and marker.startswith("skip"):
        pytest.skip(marker.partition(",")[2].strip() or "marked skip")
    if page["failed"]:
        pytest.fail(f"an earlier block of {path} failed (line {page['failed']})")
    monkeypatch.chdir(page["folder"])
    if marker == "model server":
        if path not in model_server:
            server = ModelServer(str(page["folder"] / "saved_models"))
            server.start(rest_port=8501, grpc_port=8500)
            model_server[path] = server
    elif marker is not None:
        raise ValueError(f"{path}:{line}: unknown docs-test marker {marker!r}")
    page["failed"] = line
    run_block(code, page["namespace"], path, line)
    page["failed"] = None


def test_the_collector_finds_the_blocks_and_checks_shapes(tmp_path):
    assert len(CASES) >= 8 and {c[0] for c in CASES} >= {
        "README.md",
        os.path.join("docs", "getting-started.md"),
    }
    assert any(c[3] and c[3].startswith("skip") for c in CASES)
    namespace = {}
    run_block("import numpy as np\nnp.zeros((2, 3)).shape  # (2, 3)", namespace, "t", 1)
    # A page whose comment is wrong fails, naming the line.
    with pytest.raises(AssertionError, match=r"line 2: the page says \(3, 2\)"):
        run_block("import numpy as np\nnp.zeros((2, 3)).shape  # (3, 2)", namespace, "t", 1)
