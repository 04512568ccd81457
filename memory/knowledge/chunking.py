"""Splitting a document into chunks at semantic boundaries.

Each format has a reader that turns the file's lines into *blocks*
(:mod:`memory.knowledge.blocks`): a heading, a paragraph, a fenced code block, a
definition in source code, each with its line numbers and heading trail. The
assembler here then packs blocks into chunks:

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

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

# Block is what a plugin's reader yields (memory.hookspecs): it stays importable from here.
from memory.knowledge.blocks import Block as Block
from memory.knowledge.blocks import Line, pdf_blocks, text_blocks
from memory.knowledge.markup import html_blocks, markdown_blocks, rst_blocks
from memory.knowledge.source_code import code_blocks

DEFAULT_MAX_TOKENS = 400
DEFAULT_OVERLAP = 40
TRAIL_SEP = " > "


@dataclass
class Chunk:
    index: int
    text: str
    line_start: int
    line_end: int
    heading: str
    tokens: int
    pages: tuple[int, int] | None = None


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
