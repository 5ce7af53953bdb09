"""Every Python block of the README and of the docs site runs.

The blocks of one page run in order in one namespace, as a reader would
paste them, in a fresh folder that holds what the pages say they start from:
a tiny transformers checkpoint in `conv-bert-small/` (the pages say so where
they use it). A block may be marked by an HTML comment on the line before it
(invisible on GitHub and on the site):

- `<!-- docs-test: skip, REASON -->`: not run here; the test is reported as
  skipped with REASON (a Hub download, a TPU).
- `<!-- docs-test: model server -->`: it queries TF Serving on localhost's
  ports 8501 (REST) and 8500 (gRPC); the test serves the page's
  `saved_models/` there with the stand-in of `tests/serving_standin.py`.

A top-level expression whose comment gives a shape, `x.shape  # (1, 2)`, is
checked: its value must equal that tuple.
"""

import ast
import glob
import importlib
import inspect
import os
import re
import shutil

import pytest
from serving_standin import ModelServer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "tests", "fixtures")
# The benchmark's raw summaries under docs/performance hold no code.
PAGES = ["README.md"] + sorted(
    os.path.relpath(path, ROOT)
    for path in glob.glob(os.path.join(ROOT, "docs", "**", "*.md"), recursive=True)
    if os.sep + "performance" + os.sep not in path
)
MARKER = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->$")
FENCE = re.compile(r"^(\s*)```(\S*)")
SHAPE_COMMENT = re.compile(r"#\s*(\((?:\s*\d+\s*,)*\s*\d*\s*\))")


def python_blocks(text):
    """`(line, code, marker)` for every ```python block of a Markdown text:
    `line` is where the code starts (1-based), `marker` the docs-test
    comment on the line before the fence, or None."""
    lines = text.split("\n")
    blocks, index = [], 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, language = match.groups()
        end = index + 1
        while not lines[end].strip().startswith("```"):
            end += 1
        if language == "python":
            before = lines[index - 1].strip() if index else ""
            marker = MARKER.match(before)
            code = "\n".join(line[len(indent) :] for line in lines[index + 1 : end])
            blocks.append((index + 2, code, marker.group(1) if marker else None))
        index = end + 1
    return blocks


def read(path):
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


def api_reference():
    """`(page, dotted name, object)` for everything the API pages render:
    each `::: name`, and each name in the `__all__` of a module rendered
    with `members: true`."""
    entries = []
    for page in sorted(glob.glob(os.path.join(ROOT, "docs", "api", "*.md"))):
        text = read(page)
        for match in re.finditer(r"^::: (\S+)\n((?:    .*\n)*)", text, re.M):
            name, options = match.groups()
            obj = resolve(name)
            if "members: true" in options:
                entries += [(page, f"{name}.{m}", getattr(obj, m)) for m in obj.__all__]
            else:
                entries.append((page, name, obj))
    return entries


def resolve(name):
    module, _, attribute = name, "", []
    while True:
        try:
            obj = importlib.import_module(module)
            break
        except ModuleNotFoundError:
            module, _, last = module.rpartition(".")
            attribute.insert(0, last)
    for part in attribute:
        obj = getattr(obj, part)
    return obj


def docstring_examples():
    """`(dotted name, line, code, marker)` for the examples in the
    docstrings of the objects the API pages render."""
    examples = []
    for _, name, obj in api_reference():
        doc = inspect.getdoc(obj) if (inspect.isclass(obj) or callable(obj)) else None
        for line, code, marker in python_blocks(doc or ""):
            examples.append((name, line, code, marker))
    return examples


CASES = [(page, *block) for page in PAGES for block in python_blocks(read(page))]
EXAMPLES = docstring_examples()


def _check_shape(value, expected, line):
    shape = tuple(int(d) for d in getattr(value, "shape", value))
    assert shape == expected, f"line {line}: the page says {expected}, the code gives {shape}"


class _ShapeChecks(ast.NodeTransformer):
    """Wraps each top-level `expr  # (d0, d1, ...)` in a check of its shape."""

    def __init__(self, lines, first_line):
        self.lines = lines
        self.first_line = first_line

    def visit_Module(self, module):
        for index, node in enumerate(module.body):
            if not isinstance(node, ast.Expr):
                continue
            line = self.lines[node.end_lineno - 1]
            comment = SHAPE_COMMENT.match(line[line.find("#") :]) if "#" in line else None
            if not comment:
                continue
            call = ast.Call(
                func=ast.Name("__check_shape__", ast.Load()),
                args=[
                    node.value,
                    ast.Constant(ast.literal_eval(comment.group(1))),
                    ast.Constant(self.first_line + node.end_lineno - 1),
                ],
                keywords=[],
            )
            module.body[index] = ast.copy_location(ast.Expr(call), node)
        return ast.fix_missing_locations(module)


def run_block(code, namespace, path, first_line):
    tree = _ShapeChecks(code.split("\n"), first_line).visit(ast.parse(code))
    namespace.setdefault("__check_shape__", _check_shape)
    exec(compile(tree, f"{path}:{first_line}", "exec"), namespace)


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


@pytest.fixture(scope="module")
def example_folder(tmp_path_factory):
    """What the docstrings' examples start from: `preset_dir/`, a keras-hub
    preset of a tiny ConvBERT with its tokenizer, its `vocab.txt`, and the
    checkpoint it came from in `conv-bert-small/`."""
    from convbert_keras.convert import convert_checkpoint

    folder = tmp_path_factory.mktemp("docstrings")
    shutil.copytree(os.path.join(FIXTURES, "tiny"), folder / "conv-bert-small")
    shutil.copy(folder / "conv-bert-small" / "vocab.txt", folder / "vocab.txt")
    convert_checkpoint("hf", str(folder / "conv-bert-small"), output_dir=str(folder / "preset_dir"))
    return folder


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, line, code, marker", EXAMPLES, ids=[f"{e[0]}:{e[1]}" for e in EXAMPLES]
)
def test_docstring_example_runs(name, line, code, marker, example_folder, monkeypatch):
    if marker and marker.startswith("skip"):
        pytest.skip(marker.partition(",")[2].strip())
    assert marker is None, f"{name}: unknown docs-test marker {marker!r}"
    monkeypatch.chdir(example_folder)
    # Examples name the package's public classes and functions, NumPy,
    # TensorFlow and Keras without importing them, as keras-hub's do.
    import keras
    import numpy as np
    import tensorflow as tf

    namespace = {"np": np, "tf": tf, "keras": keras, "__name__": "__docs__"}
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        namespace.update({n: getattr(module, n) for n in module.__all__})
    run_block(code, namespace, name, line)


PUBLIC_PACKAGES = (
    "convbert_keras",
    "convbert_keras.layers",
    "convbert_keras.models",
    "convbert_keras.convert",
    "convbert_keras.data",
    "convbert_keras.metrics",
    "convbert_keras.export",
)


def test_every_public_class_and_function_is_in_the_api_reference_with_a_docstring():
    rendered = {id(obj) for _, _, obj in api_reference()}
    missing, undocumented = [], []
    for package in PUBLIC_PACKAGES:
        module = importlib.import_module(package)
        for name in module.__all__:
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue  # constants (CONVBERT_CONFIGS) are shown where they are used
            if id(obj) not in rendered:
                missing.append(f"{package}.{name}")
            if not (obj.__doc__ or "").strip():
                undocumented.append(f"{package}.{name}")
    assert not missing, f"not in docs/api/: {missing}"
    assert not undocumented, f"no docstring: {undocumented}"
    assert all(doc for _, _, obj in api_reference() if (doc := inspect.getdoc(obj)))
