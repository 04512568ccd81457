"""Splitting a document into chunks at semantic boundaries.

Each format has a reader that turns the file's lines into *blocks*: a heading,
a paragraph, a fenced code block, a definition in source code. A block knows
its line numbers and the heading trail in force where it starts
(``Storage > Tables``, ``class MemoryStore > def open``). The assembler then
packs blocks into chunks:

- a heading (or a top-level or class-level definition in code) starts a new
  chunk; a heading with no text under it yet is carried into the next chunk;
- blocks are packed whole up to ``max_tokens``; a block larger than that is
  split at line boundaries (a single enormous line at character boundaries);
- when a section is split for size, the next chunk repeats the last lines of
  the previous one, up to ``overlap`` tokens, so a sentence at the cut is seen
  whole in one of them; nothing overlaps across a heading.

Readers consume lines lazily, so a large file is never held whole in memory.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

Line = tuple[int, str]  # (1-based line number, text)

DEFAULT_MAX_TOKENS = 400
DEFAULT_OVERLAP = 40
TRAIL_SEP = " > "


@dataclass
class Block:
    lines: list[Line]
    trail: tuple[str, ...] = ()
    boundary: bool = False  # a new chunk starts here
    heading: bool = False  # the block is only a heading
    end: int | None = None  # last source line when it differs from the last line's
    page: int | None = None

    @property
    def last(self) -> int:
        return self.end if self.end is not None else self.lines[-1][0]


@dataclass
class Chunk:
    index: int
    text: str
    line_start: int
    line_end: int
    heading: str
    tokens: int
    pages: tuple[int, int] | None = None


# ---------------------------------------------------------------- readers
def _paragraphs(lines: Iterable[Line]) -> Iterator[list[Line]]:
    buf: list[Line] = []
    for n, text in lines:
        if text.strip():
            buf.append((n, text))
        elif buf:
            yield buf
            buf = []
    if buf:
        yield buf


def text_blocks(lines: Iterable[Line]) -> Iterator[Block]:
    """Plain text: paragraphs separated by blank lines."""
    for para in _paragraphs(lines):
        yield Block(para)


_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


class _Trail:
    """A heading stack: ``push(level, title)`` drops headings at or below ``level``."""

    def __init__(self) -> None:
        self.stack: list[tuple[int, str]] = []

    def push(self, level: int, title: str) -> tuple[str, ...]:
        while self.stack and self.stack[-1][0] >= level:
            self.stack.pop()
        self.stack.append((level, " ".join(title.split())[:120]))
        return self.titles

    @property
    def titles(self) -> tuple[str, ...]:
        return tuple(t for _, t in self.stack)


def markdown_blocks(lines: Iterable[Line]) -> Iterator[Block]:
    """ATX and setext headings, fenced code kept whole, front matter, paragraphs."""
    trail = _Trail()
    buf: list[Line] = []
    fence: str | None = None
    front = False
    for n, text in lines:
        if n == 1 and text.strip() == "---":
            front, buf = True, [(n, text)]
            continue
        if front:
            buf.append((n, text))
            if text.strip() in ("---", "..."):
                yield Block(buf, trail.titles)
                front, buf = False, []
            continue
        if fence is not None:
            buf.append((n, text))
            stripped = text.strip()
            if stripped and set(stripped) == {fence[0]} and len(stripped) >= len(fence):
                yield Block(buf, trail.titles)
                fence, buf = None, []
            continue
        if m := _FENCE.match(text):
            if buf:
                yield Block(buf, trail.titles)
            fence, buf = m.group(1), [(n, text)]
            continue
        if m := _ATX.match(text):
            if buf:
                yield Block(buf, trail.titles)
                buf = []
            titles = trail.push(len(m.group(1)), m.group(2) or "")
            yield Block([(n, text)], titles, boundary=True, heading=True)
            continue
        if (m := _SETEXT.match(text)) and buf:
            level = 1 if m.group(1).startswith("=") else 2
            titles = trail.push(level, " ".join(t.strip() for _, t in buf))
            yield Block([*buf, (n, text)], titles, boundary=True, heading=True)
            buf = []
            continue
        if not text.strip() or (m and not buf):  # blank line, or a thematic break
            if buf:
                yield Block(buf, trail.titles)
                buf = []
            continue
        buf.append((n, text))
    if buf:
        yield Block(buf, trail.titles)


_ADORN = re.compile(r"^([!-/:-@\[-`{-~])\1+\s*$")


def rst_blocks(lines: Iterable[Line]) -> Iterator[Block]:
    """reStructuredText: titles underlined (and optionally overlined) with
    punctuation; their level follows the order in which styles first appear."""
    trail = _Trail()
    styles: list[tuple[str, bool]] = []

    def level(style: tuple[str, bool]) -> int:
        if style not in styles:
            styles.append(style)
        return styles.index(style) + 1

    for para in _paragraphs(lines):
        texts = [t for _, t in para]
        title: str | None = None
        size = 0
        if (
            len(para) >= 3
            and _ADORN.match(texts[0])
            and _ADORN.match(texts[2])
            and texts[0].strip()[0] == texts[2].strip()[0]
            and not _ADORN.match(texts[1])
        ):
            title, size, style = texts[1].strip(), 3, (texts[0].strip()[0], True)
        elif (
            len(para) >= 2
            and _ADORN.match(texts[1])
            and not _ADORN.match(texts[0])
            and not texts[0].startswith((" ", "\t"))
            and len(texts[1].strip()) >= min(len(texts[0].strip()), 3)
        ):
            title, size, style = texts[0].strip(), 2, (texts[1].strip()[0], False)
        if title is None:
            if len(para) == 1 and _ADORN.match(texts[0]):
                continue  # a transition
            yield Block(para, trail.titles)
            continue
        titles = trail.push(level(style), title)
        yield Block(para[:size], titles, boundary=True, heading=True)
        if para[size:]:
            yield Block(para[size:], titles)


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


_HTML_BLOCK = frozenset(
    """p div section article header footer main aside nav li ul ol dl dt dd table thead tbody
tr blockquote figure figcaption form fieldset address details summary hr caption""".split()
)
_HTML_SKIP = frozenset("script style noscript template svg head".split())
_HTML_HEADING = {f"h{i}": i for i in range(1, 7)}


class _HtmlReader(HTMLParser):
    """Text of an HTML page as blocks; line numbers are those of the source."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[Block] = []
        self.trail = _Trail()
        self.skip = 0
        self.pre = 0
        self.level: int | None = None
        self.parts: list[str] = []
        self.start: int | None = None

    def _flush(self) -> None:
        text, start = "".join(self.parts), self.start
        self.parts, self.start = [], None
        end = self.getpos()[0]
        if start is None or not text.strip():
            return
        if self.level is not None:
            titles = self.trail.push(self.level, text)
            heading = "#" * self.level + " " + " ".join(text.split())
            self.out.append(Block([(start, heading)], titles, True, True, end))
            return
        if self.pre:
            if text.startswith("\n"):
                text, start = text[1:], start + 1
            rows = text.rstrip("\n").split("\n")
            lines = [(start + i, row) for i, row in enumerate(rows)]
        else:
            lines = [(start, " ".join(row.split())) for row in text.split("\n") if row.strip()]
        if lines:
            self.out.append(Block(lines, self.trail.titles, end=max(end, lines[-1][0])))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _HTML_SKIP:
            self.skip += 1
        elif tag in _HTML_HEADING:
            self._flush()
            self.level = _HTML_HEADING[tag]
        elif tag == "pre":
            self._flush()
            self.pre += 1
        elif tag in _HTML_BLOCK:
            self._flush()
            if tag == "li":
                self._data("- ")
        elif tag == "br":
            self._data("\n")
        elif tag in ("td", "th") and self.parts:
            self._data(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in _HTML_SKIP:
            self.skip = max(0, self.skip - 1)
        elif tag in _HTML_HEADING and self.level is not None:
            self._flush()
            self.level = None
        elif tag == "pre" and self.pre:
            self._flush()
            self.pre -= 1
        elif tag in _HTML_BLOCK:
            self._flush()

    def _data(self, data: str) -> None:
        if self.skip:
            return
        if self.start is None:
            if not data.strip():
                return
            self.start = self.getpos()[0]
        self.parts.append(data if self.pre else data.replace("\n", " "))

    def handle_data(self, data: str) -> None:
        self._data(data)

    def drain(self) -> list[Block]:
        out, self.out = self.out, []
        return out


def html_blocks(lines: Iterable[Line]) -> Iterator[Block]:
    """HTML: headings h1–h6, block elements as paragraphs, ``<pre>`` verbatim;
    scripts, styles and ``<head>`` are skipped."""
    reader = _HtmlReader()
    group: list[str] = []
    for _, text in lines:
        group.append(text + "\n")
        if len(group) >= 512:
            reader.feed("".join(group))
            group = []
            yield from reader.drain()
    reader.feed("".join(group))
    reader.close()
    reader._flush()
    yield from reader.drain()


def pdf_blocks(path: Path) -> Iterator[Block]:
    """PDF (needs pypdf): the text of each page in paragraphs; line numbers count
    the extracted lines through the document and each block knows its page."""
    from pypdf import PdfReader

    reader = PdfReader(str(path))
    n = 0
    for number, page in enumerate(reader.pages, 1):
        text = page.extract_text() or ""
        rows = text.splitlines()
        lines = [(n + i + 1, row) for i, row in enumerate(rows)]
        n += len(rows)
        for para in _paragraphs(lines):
            yield Block(para, page=number)


READERS: dict[str, Callable[[Iterable[Line]], Iterator[Block]]] = {
    "markdown": markdown_blocks,
    "rst": rst_blocks,
    "text": text_blocks,
    "code": code_blocks,
    "html": html_blocks,
}


def read_lines(path: Path) -> Iterator[Line]:
    """The file's lines, numbered from 1, decoded as UTF-8 (bad bytes replaced)."""
    with open(path, encoding="utf-8-sig", errors="replace", newline=None) as handle:
        for n, text in enumerate(handle, 1):
            yield n, text.rstrip("\n")


def blocks_of(path: Path, fmt: str) -> Iterator[Block]:
    if fmt.startswith("."):
        return plugin_blocks(path, fmt)
    if fmt == "pdf":
        return pdf_blocks(path)
    return READERS[fmt](read_lines(path))


def plugin_blocks(path: Path, suffix: str) -> Iterator[Block]:
    """A plugin reader's blocks (or its text, read as plain text); its failures
    become mem's, so ``mem add`` reports the file and goes on."""
    from memory.errors import MemError
    from memory.plugins import PluginError, document_reader

    reader = document_reader(suffix)
    if reader is None:
        raise PluginError(f"No reader for {suffix} files: is the plugin installed?")
    try:
        produced = reader(path)
        if isinstance(produced, str):
            yield from text_blocks(enumerate(produced.splitlines(), 1))
            return
        for block in produced:
            if not isinstance(block, Block):
                raise TypeError(f"it gave {type(block).__name__}, not Block")
            yield block
    except (OSError, MemError):
        raise
    except Exception as err:
        raise PluginError(f"the {suffix} reader failed: {err}") from err


# -------------------------------------------------------------- assembler
@dataclass
class _Piece:
    lines: list[Line]
    tokens: int
    role: str  # "heading", "body" or "overlap"
    end: int
    page: int | None = None


@dataclass
class _Assembler:
    count: Callable[[str], int]
    max_tokens: int
    overlap: int
    pieces: list[_Piece] = field(default_factory=list)
    trail: tuple[str, ...] = ()
    index: int = 0

    @property
    def tokens(self) -> int:
        return sum(p.tokens for p in self.pieces)

    def has(self, *roles: str) -> bool:
        return any(p.role in roles for p in self.pieces)

    def emit(self) -> Chunk:
        text = "\n\n".join("\n".join(t for _, t in p.lines) for p in self.pieces)
        pages = [p.page for p in self.pieces if p.page is not None]
        chunk = Chunk(
            index=self.index,
            text=text,
            line_start=self.pieces[0].lines[0][0],
            line_end=max(p.end for p in self.pieces),
            heading=TRAIL_SEP.join(self.trail),
            tokens=self.tokens,
            pages=(min(pages), max(pages)) if pages else None,
        )
        self.index += 1
        return chunk

    def tail(self) -> list[_Piece]:
        """The last lines of the current chunk, up to ``overlap`` tokens."""
        kept: list[Line] = []
        spent = 0
        page = None
        for piece in reversed(self.pieces):
            for line in reversed(piece.lines):
                cost = self.count(line[1]) + 1
                if spent + cost > self.overlap:
                    break
                kept.insert(0, line)
                spent += cost
                page = piece.page
            else:
                continue
            break
        if not kept:
            return []
        return [_Piece(kept, spent, "overlap", kept[-1][0], page)]

    def add(self, piece: _Piece, trail: tuple[str, ...]) -> Iterator[Chunk]:
        if not self.has("body"):
            self.trail = trail
        if self.has("body") and self.tokens + piece.tokens > self.max_tokens:
            yield self.emit()
            self.pieces = self.tail()
            self.trail = trail
        if self.tokens + piece.tokens > self.max_tokens:
            self.pieces = [p for p in self.pieces if p.role != "overlap"]
        self.pieces.append(piece)

    def boundary(self) -> Iterator[Chunk]:
        if self.has("body"):
            yield self.emit()
            self.pieces = []
        else:  # headings with no text yet are carried into the next chunk
            self.pieces = [p for p in self.pieces if p.role == "heading"]


def _split(block: Block, count: Callable[[str], int], max_tokens: int) -> Iterator[_Piece]:
    """A block too large for one chunk, cut at line (or character) boundaries."""
    cur: list[Line] = []
    spent = 0
    width = max(max_tokens * 3, 64)
    for n, text in block.lines:
        parts = [text[i : i + width] for i in range(0, len(text), width)] or [""]
        for part in parts:
            cost = count(part) + 1
            if cur and spent + cost > max_tokens:
                yield _Piece(cur, spent, "body", cur[-1][0], block.page)
                cur, spent = [], 0
            cur.append((n, part))
            spent += cost
    if cur:
        yield _Piece(cur, spent, "body", max(cur[-1][0], block.last), block.page)


def chunk_blocks(
    blocks: Iterable[Block],
    count: Callable[[str], int],
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap: int = DEFAULT_OVERLAP,
) -> Iterator[Chunk]:
    """Pack blocks into chunks; see the module docstring for the rules."""
    asm = _Assembler(count, max_tokens, overlap)
    for block in blocks:
        if not block.lines:
            continue
        if block.boundary:
            yield from asm.boundary()
        text = "\n".join(t for _, t in block.lines)
        tokens = count(text) + 1
        role = "heading" if block.heading else "body"
        if tokens <= max_tokens:
            yield from asm.add(
                _Piece(block.lines, tokens, role, block.last, block.page), block.trail
            )
            continue
        for piece in _split(block, count, max_tokens):
            piece.role = role
            yield from asm.add(piece, block.trail)
    if asm.has("heading", "body"):
        yield asm.emit()


def chunk_file(
    path: Path,
    fmt: str,
    count: Callable[[str], int],
    *,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    overlap: int = DEFAULT_OVERLAP,
) -> Iterator[Chunk]:
    """The chunks of one file, read lazily."""
    return chunk_blocks(blocks_of(path, fmt), count, max_tokens=max_tokens, overlap=overlap)
