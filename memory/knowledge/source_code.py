"""The reader for source code: definitions (``def``, ``class``, ``fn``, ``struct`` ...) start
chunks, so a search hit lands on one function or method with the trail of the class or
module that holds it. It reads indentation, not grammar, so it serves most languages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from memory.knowledge.blocks import Block, Line

_DEF = re.compile(
    r"^(?P<indent>[ \t]*)(?:(?:export|default|public|private|protected|internal|static|final|"
    r"abstract|async|pub(?:\([^)]*\))?|unsafe|extern|inline|virtual|override|open|sealed|"
    r"data|suspend|const)\s+)*(?P<kw>def|class|function|func|fn|struct|enum|interface|trait|"
    r"impl|module|namespace|object|record|protocol|extension|union)\b\s*(?P<name>[A-Za-z_$][\w$.:]*)?"
)
_CONTAINERS = frozenset(
    "class struct enum interface trait impl module namespace object record protocol "
    "extension".split()
)
_PREFIX = re.compile(r"^\s*(?:@|#\[|//|#(?!include)|/\*|\*|--|;)")


def _indent(text: str) -> int:
    expanded = text.expandtabs(4)
    return len(expanded) - len(expanded.lstrip())


def code_blocks(lines: Iterable[Line]) -> Iterator[Block]:
    """Source code: a definition at the top level or one level in (a method)
    starts a chunk, with the comments and decorators right above it; blank
    lines separate the blocks inside."""
    stack: list[tuple[int, str]] = []  # (indent, title) of the enclosing definitions
    buf: list[Line] = []
    trail: tuple[str, ...] = ()
    boundary = False
    for n, text in lines:
        if not text.strip():
            if buf:
                yield Block(buf, trail, boundary=boundary)
                buf, boundary = [], False
            continue
        width = _indent(text)
        m = _DEF.match(text)
        if m:
            while stack and stack[-1][0] >= width:
                stack.pop()
            depth = len(stack)
            name = (m.group("name") or "").rstrip(":.")
            container = depth == 1 and stack[0][1].split(" ", 1)[0] in _CONTAINERS
            stack.append((width, f"{m.group('kw')} {name}" if name else text.strip()[:80]))
            # Comments and decorators right above the definition belong to it.
            keep = len(buf)
            while keep and _PREFIX.match(buf[keep - 1][1]):
                keep -= 1
            if keep:
                yield Block(buf[:keep], trail, boundary=boundary)
            buf = [*buf[keep:], (n, text)]
            trail = tuple(t for _, t in stack)
            boundary = depth == 0 or container
            continue
        if not text.lstrip().startswith((")", "]", "}")) and not _PREFIX.match(text):
            while stack and stack[-1][0] >= width:
                stack.pop()
        if not buf:
            trail = tuple(t for _, t in stack)
        buf.append((n, text))
    if buf:
        yield Block(buf, trail, boundary=boundary)
