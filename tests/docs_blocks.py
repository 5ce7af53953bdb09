"""Finding and running the Python blocks of the documentation: the
README's and the docs pages' fenced blocks, and the examples in the
docstrings that the API reference renders (`tests/test_docs.py`,
`tests/test_docstrings.py`).

A block may be marked by an HTML comment on the line before its fence
(invisible on GitHub and on the site):

- `<!-- docs-test: skip, REASON -->`: not run; the test is reported as
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


PUBLIC_PACKAGES = (
    "convbert_keras",
    "convbert_keras.layers",
    "convbert_keras.models",
    "convbert_keras.convert",
    "convbert_keras.data",
    "convbert_keras.metrics",
    "convbert_keras.export",
)
