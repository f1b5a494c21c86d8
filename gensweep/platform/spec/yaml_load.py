"""Reading spec YAML strictly and within bounds, before any Python object is built.

A spec is a small document, so anything far from one is refused with a message that says
where (the dotted path of the offending node, as the spec's error messages name fields):

* size: at most :data:`MAX_BYTES` bytes are read (a FIFO or ``/dev/zero`` cannot stall us);
* encoding: UTF-8 only (an optional BOM), the first bad byte's line reported;
* shape: nesting at most :data:`MAX_DEPTH` levels (checked while composing, so PyYAML's
  recursive composer never nears Python's recursion limit), at most :data:`MAX_NODES` nodes
  counted with every alias expanded (an alias bomb stops at the budget, unexpanded);
* semantics: a mapping's keys are unique (PyYAML keeps the last silently); scalars resolve by
  the YAML 1.2 core schema, so ``yes``/``no``/``on``/``off`` are strings, ``1:30`` is not
  sexagesimal 90, ``010`` is ten, dates stay strings and ``1e-3`` is a float; non-finite
  numbers (``.nan``, ``.inf``, ``1e999``) are refused: no spec field means them.
"""
from __future__ import annotations

import contextlib
import gc
import math
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

MAX_BYTES = 256 * 1024
MAX_DEPTH = 32
MAX_NODES = 50_000  # with aliases expanded
MAX_SHOWN = 60  # characters of a key or value quoted in a message

_INT = "tag:yaml.org,2002:int"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"


class YamlInputError(ValueError):
    """A YAML document refused before (or while) building it; the message says where."""


def shorten(value: Any, limit: int = MAX_SHOWN) -> str:
    """``repr(value)`` cut to ``limit`` characters; large containers are not formatted whole."""
    if isinstance(value, (list, tuple, dict, set)) and len(value) > limit:
        return f"<{type(value).__name__} of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _CoreResolver(BaseResolver):
    """The YAML 1.2 core schema's implicit types (PyYAML resolves YAML 1.1's)."""


for _tag, _pattern, _first in [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    (_INT, r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (_FLOAT, r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
             r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$", "-+.0123456789"),
    (_MERGE, r"^(?:<<)$", "<"),
]:
    _CoreResolver.add_implicit_resolver(_tag, re.compile(_pattern), list(_first))


class _CoreConstructor(SafeConstructor):
    def construct_yaml_int(self, node: ScalarNode) -> int:
        text = self.construct_scalar(node)
        if text.startswith(("0o", "0x")):
            return int(text, 0)
        return int(text, 10)

    def construct_yaml_float(self, node: ScalarNode) -> float:
        text = self.construct_scalar(node).lower()
        if text.endswith((".inf", ".nan")):
            return float(text.replace(".", ""))
        return float(text)


_CoreConstructor.add_constructor(_INT, _CoreConstructor.construct_yaml_int)
_CoreConstructor.add_constructor(_FLOAT, _CoreConstructor.construct_yaml_float)


class _BoundedComposer(Composer):
    """Refuses nesting deeper than MAX_DEPTH while composing (before recursion grows); knows the
    dotted path of the node it composes (a value's index is its key node, an item's its position)."""

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        path: list[str] = self.__dict__.setdefault("_path", [])
        step = index.value if isinstance(index, ScalarNode) else str(index) if isinstance(index, int) else None
        if step is not None:
            path.append(str(step)[:MAX_SHOWN])
        try:
            if len(path) > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise YamlInputError(f"{_dotted(path)}: nested deeper than {MAX_DEPTH} levels (line {mark.line + 1})")
            return super().compose_node(parent, index)
        finally:
            if step is not None:
                path.pop()


def _dotted(path: list[str]) -> str:
    text = ".".join(path)
    return text if len(text) <= 200 else text[:120] + " ... " + text[-60:]


class _StrictLoader(Reader, Scanner, Parser, _BoundedComposer, _CoreConstructor, _CoreResolver):
    def __init__(self, stream: str) -> None:
        Reader.__init__(self, stream)
        Scanner.__init__(self)
        Parser.__init__(self)
        _BoundedComposer.__init__(self)
        _CoreConstructor.__init__(self)
        _CoreResolver.__init__(self)


def _key_text(loader: _StrictLoader, node: Node) -> str:
    if isinstance(node, ScalarNode):
        return str(node.value) if len(node.value) <= MAX_SHOWN else node.value[:MAX_SHOWN] + "..."
    return "<complex key>"


def _check_tree(loader: _StrictLoader, root: Node) -> None:
    """Walk the node graph with aliases expanded, within the node budget: unique keys, finite numbers.
    A node's path is a linked (name, parent) pair, spelled out only for a message."""
    budget = MAX_NODES
    stack: list[tuple[Node, Any]] = [(root, None)]
    while stack:
        node, path = stack.pop()
        budget -= 1
        if budget < 0:
            raise YamlInputError(f"{_spelled(path)}: more than {MAX_NODES} values once aliases are expanded (an alias"
                                 " bomb?); a spec is a small document")
        if isinstance(node, ScalarNode):
            if node.tag == _FLOAT and not math.isfinite(loader.construct_object(node)):
                raise YamlInputError(f"{_spelled(path)}: {shorten(node.value)} is not a finite number")
        elif isinstance(node, SequenceNode):
            stack.extend((item, (str(i), path)) for i, item in enumerate(node.value))
        elif isinstance(node, MappingNode):
            seen: dict[Any, int] = {}
            for key, value in node.value:
                if key.tag == _MERGE:
                    stack.append((value, path))
                    continue
                name = _key_text(loader, key)
                ident = loader.construct_object(key) if isinstance(key, ScalarNode) else id(key)  # as dict keys merge
                if ident in seen:
                    raise YamlInputError(f"{_spelled((name, path))}: key given twice (lines {seen[ident]} and"
                                         f" {key.start_mark.line + 1}); each key may appear once")
                seen[ident] = key.start_mark.line + 1
                stack.append((value, (name, path)))


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _spelled(path: Any) -> str:
    names: list[str] = []
    while path is not None:
        names.append(path[0])
        path = path[1]
    return _dotted(names[::-1]) if names else "the document"


def load_yaml_text(text: str | bytes, source: str = "<spec>") -> Any:
    """The document in ``text`` as plain data, or :class:`YamlInputError` naming ``source`` and where."""
    if isinstance(text, bytes):
        text = decode_utf8(text, source)
    if len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        raise YamlInputError(f"{source} is larger than {MAX_BYTES // 1024} KiB; a spec is a small document")
    loader = None
    try:
        loader = _StrictLoader(text)  # the reader refuses control characters here already
        root = loader.get_single_node()
        if root is None:
            return None
        with _no_gc():  # the walk builds no cycles; collections over a large heap would only slow it
            _check_tree(loader, root)
        return loader.construct_document(root)
    except YamlInputError as e:
        raise YamlInputError(f"{source}: {e}") from None
    except yaml.YAMLError as e:
        raise YamlInputError(f"{source} is not valid YAML{_line_of(text, e)}: {_bounded(str(e))}") from None
    except RecursionError:  # a guard: MAX_DEPTH keeps the composer far from the limit
        raise YamlInputError(f"{source}: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()


def decode_utf8(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        before = data[data.rfind(b"\n", 0, e.start) + 1: e.start].decode("utf-8", "replace")
        raise YamlInputError(f"{source} is not UTF-8 text: byte 0x{data[e.start]:02x} at line {line}, after"
                             f" {shorten(before)} (save the file as UTF-8)") from None


def _line_of(text: str, error: yaml.YAMLError) -> str:
    """ at line N ('that line'), where the error has a position in ``text``."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    if mark is not None:
        number = mark.line
    elif isinstance(getattr(error, "position", None), int):
        number = text.count("\n", 0, error.position)
    else:
        return ""
    lines = text.splitlines()
    shown = shorten(lines[number].strip()) if number < len(lines) else "end of file"
    return f" at line {number + 1} ({shown})"


def read_yaml_file(path: str | Path, what: str = "spec") -> Any:
    """Read at most :data:`MAX_BYTES` (+1, to tell a larger file) of ``path`` and load it strictly."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_BYTES + 1)
    except OSError as e:
        raise YamlInputError(f"cannot read {what} {path}: {e.strerror or type(e).__name__}") from None
    if len(data) > MAX_BYTES:
        raise YamlInputError(f"{what} {path} is larger than {MAX_BYTES // 1024} KiB; a {what} is a small document")
    return load_yaml_text(data, f"{what} {path}")


def _bounded(message: str, limit: int = 600) -> str:
    return message if len(message) <= limit else message[: limit - 3] + "..."
