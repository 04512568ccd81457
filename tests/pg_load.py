"""A client process for the concurrency test and bench/search_pg.py: writes
memories of one profile, or searches it, over its own connection."""

from __future__ import annotations

import time
import zlib
from typing import Any

from memory.storage import MemoryFilter, NewMemory, Scope
from memory.storage.postgres import PostgresBackend

ANY = MemoryFilter(include_inactive=True)


def toy(text: str, dim: int) -> list[float]:
    out = [0.0] * dim
    for word in text.lower().split():
        h = zlib.crc32(word.encode())
        out[h % dim] += 1.0 if h & 256 else -1.0
    return out if any(out) else [1.0] + [0.0] * (dim - 1)


def write_and_search(
    url: str,
    profile: str,
    count: int,
    write: bool,
    seconds: float = 0.0,
    words: tuple[str, ...] = ("garden",),
) -> dict[str, Any]:
    """``count`` writes (or, ``write`` False, searches for ``words`` in turn
    until the writers' rows are in or ``seconds`` pass); errors are
    collected, not raised."""
    db = PostgresBackend.open(url)
    dim, scope = db.dim, Scope(profile)
    done: dict[str, Any] = {"writes": 0, "searches": 0, "errors": [], "seconds": 0.0}
    start = time.perf_counter()
    try:
        if write:
            for n in range(count):
                text = f"note {n} from {profile} about garden water {n % 13}"
                try:
                    db.add_memory(scope, NewMemory(text), toy(text, dim))
                    done["writes"] += 1
                except Exception as err:  # counted: the test asserts there are none
                    done["errors"].append(repr(err))
        else:
            limit = seconds or 600.0
            while time.perf_counter() - start < limit:
                word = words[done["searches"] % len(words)]
                try:
                    db.keyword_scores(scope, word, ANY)
                    db.nearest(scope, toy(f"note 7 {word}", dim), ANY, k=10, exact=False)
                    done["searches"] += 1
                except Exception as err:
                    done["errors"].append(repr(err))
                if not seconds and db.keyword_stats(scope).rows >= count * 2:
                    break
    finally:
        done["seconds"] = time.perf_counter() - start
        db.close()
    return done


def open_new(url: str, dim: int) -> str:
    """Open (creating) the database; the error's text if that failed."""
    try:
        PostgresBackend.open(url, embedder="toy", dim=dim).close()
    except Exception as err:
        return repr(err)
    return ""
