"""Which files ``mem add`` reads: walking folders, exclusions, formats.

Folders are walked in sorted order without following symlinked folders;
links that lead out of the folder are not followed either, unless asked
(``--follow-links``), and FIFOs, sockets and devices are skipped.
``.gitignore`` files found in the tree (and in the folders above it, up to the
repository's top) are honoured with git's rules, ``--exclude`` patterns use the
same syntax and win over them, and version-control, virtual-environment and
cache folders are skipped by default. A file is read only when its format is
known (by extension or a well-known name such as ``README``); a file named on
the command line is read as plain text when its format is not known. Binary
files (a NUL byte in the first 8 KiB) are always skipped.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

DEFAULT_EXCLUDES = (
    ".git/",
    ".hg/",
    ".svn/",
    ".venv/",
    "node_modules/",
    "__pycache__/",
    ".mypy_cache/",
    ".pytest_cache/",
    ".ruff_cache/",
    ".tox/",
    ".hypothesis/",
)

MARKDOWN = frozenset({".md", ".markdown", ".mdown", ".mkd", ".mdx"})
RST = frozenset({".rst", ".rest"})
TEXT = frozenset({".txt", ".text"})
HTML = frozenset({".html", ".htm", ".xhtml"})
PDF = frozenset({".pdf"})
CODE = frozenset(
    """
.py .pyi .pyx .js .jsx .mjs .cjs .ts .tsx .vue .svelte .go .rs .c .h .cc .cpp .cxx .hpp .hh
.java .kt .kts .scala .swift .m .mm .rb .php .pl .pm .lua .r .jl .sh .bash .zsh .fish .ps1
.sql .cs .fs .hs .ml .mli .ex .exs .erl .clj .dart .zig .nim .css .scss .less .toml .yaml
.yml .ini .cfg .conf .proto .graphql .tf .cmake .gradle .el .vim
""".split()
)
TEXT_NAMES = frozenset(
    "readme license licence copying changelog authors contributing notice todo news history "
    "install".split()
)
CODE_NAMES = frozenset(
    "makefile dockerfile containerfile justfile rakefile gemfile procfile vagrantfile".split()
)
SNIFF_BYTES = 8192


def file_format(path: Path, *, explicit: bool = False) -> str | None:
    """``markdown``, ``rst``, ``text``, ``code``, ``html``, ``pdf``, a plugin's
    suffix (``.toy``: read by its reader), or None (not a format mem reads;
    ``explicit`` files default to ``text``). Suffixes go through the document
    reader registry (:mod:`memory.plugins`), where mem's own formats are
    registered too; well-known names (``README``, ``Makefile``) are mem's."""
    suffix = path.suffix.lower()
    name = path.name.lower()
    if suffix:
        from memory.plugins import document_reader

        reader = document_reader(suffix)
        if reader is not None:
            fmt = getattr(reader, "format", None)
            return fmt if isinstance(fmt, str) else suffix
    if suffix in MARKDOWN:
        return "markdown"
    if suffix in RST:
        return "rst"
    if suffix in HTML:
        return "html"
    if suffix in PDF:
        return "pdf"
    if suffix in CODE or name in CODE_NAMES:
        return "code"
    if suffix in TEXT or path.stem.lower() in TEXT_NAMES or name in TEXT_NAMES:
        return "text"
    return "text" if explicit else None


def is_binary(path: Path) -> bool:
    with open(path, "rb") as handle:
        return b"\0" in handle.read(SNIFF_BYTES)


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes, read in blocks (never the whole file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ------------------------------------------------------------ gitignore rules
@dataclass(frozen=True)
class Rule:
    regex: re.Pattern[str]
    negate: bool
    dir_only: bool


def _glob_segment(seg: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(seg):
        ch = seg[i]
        if ch == "\\" and i + 1 < len(seg):
            out.append(re.escape(seg[i + 1]))
            i += 2
            continue
        if ch == "*":
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = seg.find("]", i + 2 if seg[i + 1 : i + 2] in ("!", "^") else i + 1)
            if end == -1:
                out.append(re.escape(ch))
            else:
                body = seg[i + 1 : end]
                if body[:1] in ("!", "^"):
                    body = "^" + body[1:]
                out.append("[" + body.replace("\\", "\\\\") + "]")
                i = end + 1
                continue
        else:
            out.append(re.escape(ch))
        i += 1
    return "".join(out)


def compile_pattern(line: str) -> Rule | None:
    """One line of a ``.gitignore`` as a :class:`Rule` (None: blank or comment)."""
    line = line.rstrip("\r\n")
    if not line.strip() or line.startswith("#"):
        return None
    stripped = line.rstrip(" ")
    if stripped.endswith("\\") and len(stripped) < len(line):
        stripped += " "
    line = stripped
    negate = line.startswith("!")
    if negate:
        line = line[1:]
    elif line.startswith(("\\!", "\\#")):
        line = line[1:]
    dir_only = line.endswith("/")
    line = line.rstrip("/")
    if not line:
        return None
    anchored = "/" in line
    parts = line.lstrip("/").split("/")
    regex = ""
    for i, seg in enumerate(parts):
        last = i == len(parts) - 1
        if seg == "**":
            regex += ".+" if last else "(?:[^/]+/)*"
        else:
            regex += _glob_segment(seg) + ("" if last else "/")
    if not anchored:
        regex = "(?:[^/]+/)*" + regex
    return Rule(re.compile(f"^{regex}$", re.DOTALL), negate, dir_only)


@dataclass
class RuleSet:
    """Patterns of one ``.gitignore`` (or of ``--exclude``), relative to ``base``."""

    base: Path
    rules: list[Rule]

    @classmethod
    def parse(cls, base: Path, lines: Iterable[str]) -> RuleSet:
        return cls(base, [r for r in (compile_pattern(x) for x in lines) if r is not None])

    @classmethod
    def load(cls, folder: Path) -> RuleSet | None:
        try:
            text = (folder / ".gitignore").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return None
        found = cls.parse(folder, text.splitlines())
        return found if found.rules else None

    def decide(self, path: Path, is_dir: bool) -> bool | None:
        """True ignore, False re-include, None: no pattern of this set matches."""
        try:
            rel = path.relative_to(self.base).as_posix()
        except ValueError:
            return None
        verdict = None
        for rule in self.rules:
            if rule.dir_only and not is_dir:
                continue
            if rule.regex.match(rel):
                verdict = not rule.negate
        return verdict


def ignored(path: Path, is_dir: bool, sets: Sequence[RuleSet]) -> bool:
    """git's rule: the last matching pattern decides (later sets win)."""
    verdict = False
    for rule_set in sets:
        decided = rule_set.decide(path, is_dir)
        if decided is not None:
            verdict = decided
    return verdict


def _repo_top(folder: Path) -> Path | None:
    for candidate in (folder, *folder.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


def _ancestor_sets(root: Path) -> list[RuleSet]:
    """``.gitignore`` files above ``root``, from the repository's top down."""
    top = _repo_top(root)
    if top is None or top == root:
        return []
    sets: list[RuleSet] = []
    folder = root.parent
    chain = []
    while True:
        chain.append(folder)
        if folder == top or folder == folder.parent:
            break
        folder = folder.parent
    for folder in reversed(chain):
        found = RuleSet.load(folder)
        if found:
            sets.append(found)
    return sets


@dataclass
class Found:
    """One file to consider, with the format it will be read as."""

    path: Path
    format: str | None
    explicit: bool = False


NOT_REGULAR = "not a regular file"
LINK_OUTSIDE = "link outside the folder (add --follow-links)"


def path_key(path: Path | str) -> str:
    """The path as stored and shown: a name that is not valid UTF-8 keeps its
    odd bytes as ``\\xNN`` escapes (SQLite and JSON take only valid text)."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _inside(target: str, root: str) -> bool:
    return target == root or target.startswith(root.rstrip(os.sep) + os.sep)


def _link_kind(
    path: Path, root: Path, follow_links: bool, skipped: dict[str, int]
) -> tuple[bool, bool]:
    """(is a folder to walk, is a file to read) for a symbolic link: one that
    leads out of ``root`` only with ``follow_links``; links to folders only
    then too (a link inside would index the same files twice)."""
    target = os.path.realpath(path)
    if not (follow_links or _inside(target, str(root))):
        skipped[LINK_OUTSIDE] = skipped.get(LINK_OUTSIDE, 0) + 1
        return False, False
    try:
        mode = os.stat(path).st_mode
    except OSError:  # a dangling link
        return False, False
    if stat.S_ISDIR(mode):
        return follow_links and not _inside(str(root), target), False
    if not stat.S_ISREG(mode):
        skipped[NOT_REGULAR] = skipped.get(NOT_REGULAR, 0) + 1
        return False, False
    return False, True


def walk(
    root: Path,
    *,
    exclude: Sequence[str] = (),
    use_gitignore: bool = True,
    follow_links: bool = False,
    skipped: dict[str, int] | None = None,
) -> Iterator[tuple[Path, str | None]]:
    """Files under ``root`` (sorted, depth first) with their format; excluded
    paths and unknown formats are yielded with format None only for counting.
    FIFOs, sockets and devices (which would block or never end) and links
    leading out of ``root`` are left out and counted in ``skipped``."""
    skipped = {} if skipped is None else skipped
    defaults = RuleSet.parse(root, DEFAULT_EXCLUDES)
    extra = RuleSet.parse(root, exclude)
    base = [defaults, *(_ancestor_sets(root) if use_gitignore else [])]
    stack: list[tuple[Path, list[RuleSet]]] = [(root, base)]
    walked = {os.path.realpath(root)}
    while stack:
        folder, inherited = stack.pop()
        own = RuleSet.load(folder) if use_gitignore else None
        sets = [*inherited, own] if own else inherited
        active = [*sets, extra]
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            continue
        subdirs: list[Path] = []
        for entry in entries:
            path = Path(entry.path)
            try:
                if entry.is_symlink():
                    if ignored(path, False, active):
                        continue
                    is_dir, is_file = _link_kind(path, root, follow_links, skipped)
                else:
                    is_dir = entry.is_dir(follow_symlinks=False)
                    is_file = not is_dir and entry.is_file(follow_symlinks=False)
                    if not (is_dir or is_file):
                        skipped[NOT_REGULAR] = skipped.get(NOT_REGULAR, 0) + 1
            except OSError:
                continue
            if not (is_dir or is_file) or ignored(path, is_dir, active):
                continue
            if is_dir:
                real = os.path.realpath(path)
                if real in walked:  # a loop of followed links
                    continue
                walked.add(real)
                subdirs.append(path)
            else:
                yield path, file_format(path)
        stack.extend((sub, sets) for sub in reversed(subdirs))


def discover(
    paths: Sequence[Path], *, exclude: Sequence[str] = (), follow_links: bool = False
) -> tuple[list[Found], dict[str, int]]:
    """Every file to consider under ``paths`` (files named directly are kept
    unless an ``--exclude`` pattern matches them or they are not regular
    files), and counts of what was left out."""
    found: dict[Path, Found] = {}
    skipped: dict[str, int] = {}
    for root in paths:
        if root.is_dir():
            walked = walk(root, exclude=exclude, follow_links=follow_links, skipped=skipped)
            for path, fmt in walked:
                if fmt is None:
                    skipped["unsupported"] = skipped.get("unsupported", 0) + 1
                elif path not in found:
                    found[path] = Found(path, fmt)
        else:
            rules = RuleSet.parse(root.parent, exclude)
            if rules.decide(root, False) or RuleSet.parse(Path.cwd(), exclude).decide(root, False):
                skipped["excluded"] = skipped.get("excluded", 0) + 1
                continue
            if not stat.S_ISREG(root.stat().st_mode):  # a FIFO would block the read forever
                skipped[NOT_REGULAR] = skipped.get(NOT_REGULAR, 0) + 1
                continue
            found[root] = Found(root, file_format(root, explicit=True), explicit=True)
    return list(found.values()), skipped
