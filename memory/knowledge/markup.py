"""Readers for markup formats: Markdown, reStructuredText and HTML.

Each turns a file's lines into blocks (:mod:`memory.knowledge.blocks`) whose headings start
new chunks and set the heading trail; code in fences or ``<pre>`` is kept whole. Lines are
consumed lazily, so a large file is never held whole in memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from html.parser import HTMLParser

from memory.knowledge.blocks import Block, Line, Trail, paragraphs

_ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")


def markdown_blocks(lines: Iterable[Line]) -> Iterator[Block]:
    """ATX and setext headings, fenced code kept whole, front matter, paragraphs."""
    trail = Trail()
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
    trail = Trail()
    styles: list[tuple[str, bool]] = []

    def level(style: tuple[str, bool]) -> int:
        if style not in styles:
            styles.append(style)
        return styles.index(style) + 1

    for para in paragraphs(lines):
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
        self.trail = Trail()
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
