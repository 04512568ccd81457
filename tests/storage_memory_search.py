"""Search legs, lineage and forgetting of the in-memory backend.

BM25 is FTS5's formula (k1 1.2, b 0.75, IDF floored at 1e-6) over the
scope's own rows; phrases match consecutive stemmed words.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace

from storage_memory_core import IDF_FLOOR, K1, B, Core, _cosine, _count, tokens

from memory.errors import NotFoundError, UsageError
from memory.storage import ForgetResult, KeywordStats, Lineage, MemoryFilter, Scope
from memory.storage.protocol import Column, Scrub
from memory.storage.records import Event, Memory, MemoryBrief


class SearchMixin(Core):
    # ---------------------------------------------------------- search legs
    def _columns(self, m: Memory) -> dict[str, list[str]]:
        return {"content": tokens(m.content), "speaker": tokens(m.speaker)}

    def keyword_stats(self, scope: Scope) -> KeywordStats:
        rows = [m for m in self.s.memories.values() if scope.reads(m.profile)]
        return KeywordStats(
            len(rows), sum(len(tokens(m.content)) + len(tokens(m.speaker)) for m in rows)
        )

    def keyword_scores(
        self,
        scope: Scope,
        term: str,
        filters: MemoryFilter,
        *,
        column: Column = "content",
        limit: int = 50,
        newest: int | None = None,
    ) -> dict[int, float]:
        phrase = tokens(term)
        if not phrase or limit < 1:
            return {}
        st = self.keyword_stats(scope)
        scope_all = [m for m in self.s.memories.values() if scope.reads(m.profile)]
        hits = sum(1 for m in scope_all if _count(self._columns(m)[column], phrase))
        idf = math.log((st.rows - hits + 0.5) / (hits + 0.5)) if st.rows else IDF_FLOOR
        idf = max(idf, IDF_FLOOR) if idf > 0 else IDF_FLOOR
        avgdl = st.tokens / st.rows if st.rows and st.tokens else 1.0
        matched = [
            (m, _count(self._columns(m)[column], phrase)) for m in self._passing(scope, filters)
        ]
        matched = [(m, f) for m, f in reversed(matched) if f][: newest or None]
        scores = {}
        for m, freq in matched:
            length = sum(len(c) for c in self._columns(m).values())
            norm = K1 * (1 - B + B * length / avgdl)
            scores[m.id] = idf * (freq * (K1 + 1.0)) / (freq + norm)
        best = sorted(scores.items(), key=lambda kv: (kv[1], kv[0]), reverse=True)[:limit]
        return dict(best)

    def keyword_match(self, scope: Scope, terms: Sequence[str], filters: MemoryFilter) -> list[int]:
        phrases = [tokens(t) for t in terms if tokens(t)]
        if not phrases:
            return []
        return [
            m.id
            for m in self._passing(scope, filters)
            if m.profile == scope.writes
            and all(any(_count(c, p) for c in self._columns(m).values()) for p in phrases)
        ]

    def similarities(
        self, scope: Scope, vector: Sequence[float], ids: Iterable[int]
    ) -> dict[int, float]:
        q = self._vector(vector)
        out = {}
        for mid in ids:
            if self._readable(scope, mid) is not None:
                sim = _cosine(q, self.s.vectors[mid])
                if sim is not None:
                    out[mid] = sim
        return out

    def nearest(
        self,
        scope: Scope,
        vector: Sequence[float],
        filters: MemoryFilter,
        *,
        k: int,
        exact: bool | None = None,
    ) -> dict[int, float]:
        if k < 1 or not any(vector):
            return {}
        sims = self.similarities(scope, vector, [m.id for m in self._passing(scope, filters)])
        return dict(sorted(sims.items(), key=lambda kv: (-kv[1], kv[0]))[:k])

    def session_neighbours(
        self, scope: Scope, anchors: Iterable[int], window: int, filters: MemoryFilter
    ) -> dict[int, list[tuple[int, int]]]:
        if window < 1:
            return {}
        ok = {m.id for m in self._passing(scope, filters)}
        out: dict[int, list[tuple[int, int]]] = {}
        for a in dict.fromkeys(anchors):
            c = self._readable(scope, a)
            if c is None or c.kind != "message" or c.conversation is None:
                continue
            run = sorted(
                i
                for i, m in self.s.memories.items()
                if m.kind == "message"
                and m.conversation == c.conversation
                and m.profile == c.profile
            )
            before = [i for i in reversed(run) if i < a][:window]
            after = [i for i in run if i > a][:window]
            near = [(i, -n) for n, i in enumerate(before, 1) if i in ok]
            out[a] = near + [(i, n) for n, i in enumerate(after, 1) if i in ok]
        return out

    def speakers(
        self, scope: Scope, term: str, filters: MemoryFilter, *, limit: int = 5
    ) -> list[str]:
        phrase = tokens(term)
        found = [m for m in self._passing(scope, filters) if _count(tokens(m.speaker), phrase)]
        return [m.speaker or "" for m in found[:limit]] if phrase else []

    def briefs(self, scope: Scope, ids: Iterable[int], filters: MemoryFilter) -> list[MemoryBrief]:
        ok = {m.id: m for m in self._passing(scope, filters)}
        return [
            (m.id, m.kind, m.conversation, m.created_at, m.speaker, m.importance)
            for m in (ok.get(i) for i in ids)
            if m is not None
        ]

    def row_bound(self, scope: Scope) -> int:
        return self.keyword_stats(scope).rows

    # ------------------------------------------------------ for the store
    def taken(
        self, scope: Scope, *, conversation: str | None = None, import_key: str | None = None
    ) -> bool:
        if import_key is None:
            c = self.s.conversations.get(conversation or "")
            return c is not None and c["profile"] != scope.writes
        m = self.s.messages.get(self.s.import_keys.get(import_key, 0))
        return m is not None and m.profile != scope.writes

    def message_id(self, scope: Scope, import_key: str) -> int | None:
        m = self.s.messages.get(self.s.import_keys.get(import_key, 0))
        return m.id if m is not None and m.profile == scope.writes else None

    def event(self, scope: Scope, event_id: int) -> Event | None:
        e = self.s.events.get(event_id)
        if e is None or e.memory_id is None:
            return None
        return next((x for x in self.events(scope, e.memory_id) if x.id == event_id), None)

    def reindex(
        self,
        scope: Scope,
        embedder: str,
        dim: int,
        embed: Callable[[list[str]], Sequence[Sequence[float]]],
        *,
        progress: Callable[[int, int], None] | None = None,
        batch: int = 256,
    ) -> int:
        ids = sorted(self.s.memories)
        for start in range(0, len(ids), batch):
            chunk = ids[start : start + batch]
            vectors = embed([self.s.memories[i].content for i in chunk])
            self.s.vectors.update({i: list(v) for i, v in zip(chunk, vectors, strict=True)})
            if progress:
                progress(min(start + batch, len(ids)), len(ids))
        self.s.meta.update(embedder=embedder, embedder_dim=str(dim))
        self.dim = dim
        return len(ids)

    # ------------------------------------------------ lineage and forgetting
    def lineage(self, scope: Scope, message_ids: Iterable[int]) -> Lineage:
        ids = sorted(i for i in set(message_ids) if self.message(scope, i) is not None)
        if not ids:
            return Lineage((), (), (), ())
        convs = sorted({self.s.messages[i].conversation for i in ids})
        found: list[int] = []
        for mid, m in sorted(self.s.memories.items()):
            if m.profile != scope.writes:
                continue
            keyed = (m.source == "fact-key" or m.kind == "example") and any(
                x in ids for x in m.metadata.get("source_message_ids") or []
            )
            derived = m.kind in ("summary", "episode") and m.conversation in convs
            if m.source_message_id in ids or derived or keyed:
                found.append(mid)
        quoting = []
        for eid, e in sorted(self.s.events.items()):
            owner = self.s.memories.get(e.memory_id or 0)
            if owner is None or owner.profile != scope.writes:
                continue
            if e.detail.get("source_message") not in ids:
                continue
            if e.event == "update":
                found.append(owner.id)
            elif e.event == "ignore":
                quoting.append(eid)
        return Lineage(tuple(ids), tuple(dict.fromkeys(found)), tuple(convs), tuple(quoting))

    def _restore(self, scope: Scope, mid: int, result: ForgetResult) -> None:
        for oid, m in sorted(self.s.memories.items()):
            if m.superseded_by == mid and m.profile == scope.writes:
                self.s.memories[oid] = replace(m, superseded_by=None, valid_until=None)
                self._event(oid, "restore", "user", None, None, {"forgotten": mid})
                result.restored.append(oid)

    def forget(
        self,
        scope: Scope,
        ids: Sequence[int],
        *,
        with_source: bool = False,
        scrub: Scrub | None = None,
        at: str = "",
    ) -> ForgetResult:
        if not ids:
            raise UsageError("Nothing to forget: give memory ids.")
        result = ForgetResult()
        with self.transaction(scope):
            lost: list[int] = []
            for mid in ids:
                m = self.s.memories.get(mid)
                if m is None or m.profile != scope.writes:
                    raise NotFoundError(
                        f"No memory with id {mid} in profile {scope.writes!r}: "
                        "see `mem list` for ids; nothing was forgotten."
                    )
                src = m.source_message_id
                if src is not None and (with_source or m.kind == "message"):
                    if self.message(scope, src) is not None:
                        lost.append(src)
                if mid not in result.memories:
                    self._restore(scope, mid, result)
                    detail = {"kind": m.kind, "source": m.source, "with_source": with_source}
                    result.texts.append(self._delete(mid, detail))
                    result.memories.append(mid)
            self._follow(scope, lost, result)
            if scrub is not None:
                self._scrub_words(scope, scrub, result)
            gone = set(result.memories) | set(result.derived)
            result.restored = [m for m in result.restored if m not in gone]
        return result

    def _follow(self, scope: Scope, lost: list[int], result: ForgetResult) -> None:
        found = self.lineage(scope, lost)
        for eid in found.quoting_events:
            self.s.events[eid] = replace(self.s.events[eid], before=None, after=None)
            result.events += 1
        for mid in found.memories:
            if mid in result.memories or mid in result.derived or mid not in self.s.memories:
                continue
            m = self.s.memories[mid]
            self._restore(scope, mid, result)
            text = self._delete(mid, {"kind": m.kind, "source": m.source, "reason": "lineage"})
            (result.memories if m.kind == "message" else result.derived).append(mid)
            result.texts.append(text)
        firsts: dict[str, int] = {}
        for i in found.messages:
            msg = self.s.messages.pop(i)
            firsts.setdefault(msg.conversation, i)
            result.texts.append(msg.content)
            result.messages.append(i)
        for cid, first in firsts.items():
            c = self.s.conversations[cid]
            if c["summary"] is not None and (
                c["summary_upto"] is None or c["summary_upto"] >= first
            ):
                c["summary"] = c["summary_upto"] = None
                result.summaries.append(cid)

    def _scrub_words(self, scope: Scope, scrub: Scrub, result: ForgetResult) -> None:
        for cid, c in self.s.conversations.items():
            if c["profile"] != scope.writes:
                continue
            if cid not in result.summaries and c["summary"] and scrub(c["summary"]):
                c["summary"] = c["summary_upto"] = None
                result.summaries.append(cid)
            if c["title"] and scrub(c["title"]):
                c["title"] = None
                result.titles.append(cid)
        for eid, e in self.s.events.items():
            m = self.s.memories.get(e.memory_id or 0)
            if m is None or m.profile != scope.writes or (e.before is None and e.after is None):
                continue
            text = " ".join(json.dumps(x, ensure_ascii=False) for x in (e.before, e.after) if x)
            if scrub(text):
                self.s.events[eid] = replace(e, before=None, after=None)
                result.events += 1

    def scrub(self, scope: Scope) -> bool:
        return True  # nothing is kept on the side
