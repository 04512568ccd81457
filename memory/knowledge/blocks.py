"""Blocks: what a format's reader makes of a file's lines before they are packed into chunks.

A block is a heading, a paragraph, a fenced code block or a definition in source code; it
knows its line numbers and the heading trail in force where it starts (``Storage > Tables``,
``class MemoryStore > def open``), so a chunk can say where in the document it comes from.
The readers of each format live beside this module (:mod:`memory.knowledge.markup`,
:mod:`memory.knowledge.source_code`); plain text and PDF, which need no more than
paragraphs, are here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

Line = tuple[int, str]  # (1-based line number, text)


@dataclass
class Block:
    """What a reader yields: chunks are cut between blocks, inside one only when it is too
    large for a chunk on its own."""

    lines: list[Line]
    trail: tuple[str, ...] = ()
    boundary: bool = False  # a new chunk starts here
    heading: bool = False  # the block is only a heading
    end: int | None = None  # last source line when it differs from the last line's
    page: int | None = None

    @property
    def last(self) -> int:
        return self.end if self.end is not None else self.lines[-1][0]


def paragraphs(lines: Iterable[Line]) -> Iterator[list[Line]]:
    """Runs of non-blank lines."""
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
    for para in paragraphs(lines):
        yield Block(para)


class Trail:
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
        for para in paragraphs(lines):
            yield Block(para, page=number)
