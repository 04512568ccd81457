"""The adversarial section of bench/faults.py: issue 11 items 1–10 replayed.

    .venv/bin/python bench/faults.py --only adversarial [--slow]

Each case runs real ``mem`` processes against its own MEM_HOME, the way the
issue reproduced the defect, and prints (case, expected, observed). The
expected column is the issue's wording of the promise; "observed ≠ expected" is
a defect still open on this build. Case 10 holds a reader for longer than the
30 s busy timeout, so it runs only with ``--slow`` (it is reported as skipped,
not as handled, otherwise).
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import faults
from faults import Run, run_mem


@dataclass
class Outcome:
    case: str
    expected: str
    observed: str
    ok: bool | None  # None: not run (skipped)


def _json(run: Run) -> list[dict[str, object]]:
    try:
        return list(json.loads(run.stdout))
    except ValueError:
        return []


def _contents(home: Path, *args: str) -> list[str]:
    return [str(m["content"]) for m in _json(run_mem(["list", "--json", "--all", *args], home))]


def _raw(home: Path) -> bytes:
    return b"".join(p.read_bytes() for p in home.iterdir() if p.is_file())


def _import(home: Path, lines: list[dict[str, object]], *args: str) -> Run:
    data = "".join(json.dumps(line) + "\n" for line in lines).encode()
    return run_mem(["import", "-", *args], home, stdin=data)


# ------------------------------------------------------------------------ cases
def global_options(work: Path) -> Outcome:
    home = work / "1"
    other = home / "other.db"
    run_mem(["remember", "in default"], home)
    wrote = run_mem(["--db", str(other), "remember", "meant for other.db"], home)
    profile = run_mem(["--profile", "alice", "remember", "meant for alice"], home)
    in_default = _contents(home)
    in_other = _contents(home, "--db", str(other)) if other.exists() else []
    in_alice = _contents(home, "--profile", "alice")
    refused = wrote.clean_error and profile.clean_error
    applied = "meant for other.db" in in_other and "meant for alice" in in_alice
    leaked = [t for t in ("meant for other.db", "meant for alice") if t in in_default]
    observed = (
        f"--db: exit {wrote.code}, in other.db "
        f"{'yes' if 'meant for other.db' in in_other else 'no'}"
        f"; --profile: exit {profile.code}, in alice "
        f"{'yes' if 'meant for alice' in in_alice else 'no'}; in default: {leaked or 'none'}"
    )
    return Outcome(
        "1 options before the subcommand",
        "applied to the subcommand, or a one-line error; never ignored",
        observed,
        (applied or refused) and not leaked,
    )


def cross_profile_delete(work: Path) -> Outcome:
    home = work / "2"
    msg = {"conversation": "therapy", "role": "user", "content": "alice private note", "id": "m1"}
    _import(home, [msg], "--profile", "alice")
    line = {"type": "memory", "content": "x", "source_message": "therapy\u001fm1"}
    _import(home, [line], "--profile", "bob")
    bob = _json(run_mem(["list", "--json", "--profile", "bob"], home))
    ids = [str(m["id"]) for m in bob if m.get("content") == "x"]
    forget = run_mem(["forget", *ids, "--with-source", "--profile", "bob", "--yes"], home)
    alice = _contents(home, "--profile", "alice", "--kind", "message")
    kept = "alice private note" in alice
    return Outcome(
        "2 bob forgets --with-source a line naming alice's message",
        "alice's message untouched",
        f"forget exit {forget.code}; alice's message {'kept' if kept else 'DELETED'}",
        kept,
    )


def keyword_scope(work: Path) -> Outcome:
    home = work / "3"
    lines: list[dict[str, object]] = [
        {"type": "memory", "content": f"zorblax note number {i}"} for i in range(2100)
    ]
    run_mem(["remember", "bob's own zorblax", "--profile", "bob"], home)  # the oldest
    _import(home, lines, "--profile", "alice")
    hits = _json(run_mem(["search", "zorblax", "--profile", "bob", "--json"], home))
    found = any("bob's own zorblax" == h.get("content") for h in hits)
    # Import ids are per profile: bob's message with the id of alice's is bob's own.
    line = {"conversation": "shared", "role": "user", "id": "7"}
    _import(home, [dict(line, content="alice's line")], "--profile", "alice")
    bob = _import(home, [dict(line, content="bob's line")], "--profile", "bob", "--json")
    try:
        added = json.loads(bob.stdout).get("messages_added")
    except ValueError:
        added = None
    told = "alice" in bob.stderr
    return Outcome(
        "3 2,100 'zorblax' in alice, one in bob; bob searches; bob imports alice's message id",
        "bob's memory found, nothing of alice's shown; bob's message added, alice never named",
        f"bob's memory {'found' if found else 'NOT found'} in {len(hits)} hits; bob's message "
        f"added {added}; alice named to bob: {'yes' if told else 'no'}",
        found and all(h.get("profile") == "bob" for h in hits) and added == 1 and not told,
    )


def forget_lineage(work: Path) -> Outcome:
    home = work / "4"
    canary = "canary-wisteria-8841"
    _import(home, [{"conversation": "c4", "role": "user", "content": f"my word is {canary}"}])
    msgs = _json(run_mem(["list", "--json", "--kind", "message"], home))
    ids = [str(m["id"]) for m in msgs if canary in str(m["content"])]
    forget = run_mem(["forget", *ids, "--yes"], home)
    export = run_mem(["export", "-"], home)
    left = _raw(home).count(canary.encode()) + export.stdout.count(canary)
    return Outcome(
        "4 forget a message memory by id",
        "its text gone from messages, exports and every file under MEM_HOME",
        f"forget exit {forget.code}; text still found {left} times (files + export)",
        forget.code == 0 and left == 0,
    )


def repl_history(work: Path) -> Outcome:
    import pexpect

    home = work / "5"
    env = faults.child_env(home, {"MEM_NO_LOCAL_MODEL": "1", "PROMPT_TOOLKIT_NO_CPR": "1"})
    home.mkdir(parents=True, exist_ok=True)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "cli.main", "chat"],
        env=env,
        cwd=str(faults.ROOT),
        encoding="utf-8",
        timeout=60,
    )
    child.expect_exact("you>")
    child.sendline("/remember my bank PIN is 4921")
    child.expect_exact("you>")
    child.sendline("/exit")
    child.expect(pexpect.EOF)
    history = home / "history"
    if not history.exists():
        return Outcome("5 REPL history", "0600, secrets gated", "no history file", True)
    mode = stat.S_IMODE(history.stat().st_mode)
    pin = "4921" in history.read_text(errors="replace")
    return Outcome(
        "5 REPL history after '/remember my bank PIN is 4921'",
        "file mode 0600; the PIN not in it",
        f"mode {mode:04o}; PIN {'in the history' if pin else 'absent'}",
        mode & 0o077 == 0 and not pin,
    )


def secret_metadata(work: Path) -> Outcome:
    home = work / "6"
    line = {
        "type": "memory",
        "content": "the wifi password is Sunflower-77",
        "metadata": {"slot": "wifi password", "value": "Sunflower-77"},
    }
    _import(home, [line])
    shown = run_mem(["list", "--json"], home).stdout + run_mem(["export", "-"], home).stdout
    raw = "Sunflower-77" in shown
    return Outcome(
        "6 imported memory with the secret in metadata.value",
        "the secret in no stored string (content, metadata, source)",
        f"secret {'shown by list/export' if raw else 'absent'}",
        not raw,
    )


SECRETS = [  # (what the user types, the part that must not be stored)
    ("my stripe key is sk_live_51HqLyjWDarjtT1zdp7dcXQ2", "sk_live_51HqLyjWDarjtT1zdp7dcXQ2"),
    ("token github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwx", "github_pat_11ABCDEFG0"),
    ("hf_abcdefghijklmnopqrstuvwxyzABCDEFGH is my hugging face token", "hf_abcdefghijklmnop"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.abcdefghijk", "eyJhbGci"),
    ("connect to postgres://admin:S3cretPass@db.example.com/prod", "S3cretPass"),
    ("the password for my email is Hunter2!x", "Hunter2!x"),
    ("my pw is correcthorse99", "correcthorse99"),
    ("remember PIN 4921", "4921"),
    ("card 4111.1111.1111.1111", "4111.1111.1111.1111"),
    ("iban gb82west12345698765432", "gb82west12345698765432"),
]


def secret_forms(work: Path) -> Outcome:
    home = work / "7"
    for text, _ in SECRETS:
        run_mem(["remember", text], home)
    stored = " ".join(_contents(home))
    leaked = [secret[:12] for _, secret in SECRETS if secret in stored]
    return Outcome(
        f"7 {len(SECRETS)} common secret forms remembered",
        "each redacted (or refused)",
        f"{len(SECRETS) - len(leaked)} of {len(SECRETS)} gated; kept raw: "
        f"{', '.join(leaked) or 'none'}",
        not leaked,
    )


def id_reuse(work: Path) -> Outcome:
    home = work / "8"
    for text in ("a", "b", "c"):
        run_mem(["remember", text], home)
    run_mem(["forget", "3", "--yes"], home)
    run_mem(["forget", "1", "--yes"], home)
    said = run_mem(["remember", "d"], home).stdout.strip()
    return Outcome(
        "8 remember a b c; forget 3; forget 1; remember d",
        "d gets a new id (#4): ids never reused",
        said or "(nothing printed)",
        "#4" in said,
    )


def passphrase_on_plain(work: Path) -> Outcome:
    home = work / "9"
    run_mem(["remember", "plain first"], home)
    run = run_mem(["remember", "written with a passphrase"], home, env={"MEM_PASSPHRASE": "s3"})
    plain = b"written with a passphrase" in _raw(home)
    return Outcome(
        "9 MEM_PASSPHRASE set on an existing plain database",
        "a one-line error (or the write encrypted): never silent plaintext",
        f"exit {run.code}; write {'in plaintext' if plain else 'not in plaintext'}",
        (run.clean_error and not plain) or (run.code == 0 and not plain),
    )


def forget_with_reader(work: Path) -> Outcome:
    import sqlean

    home = work / "10"
    canary = "canary-larkspur-5520"
    path = faults.seed(home, facts=1, messages=0)
    run_mem(["remember", f"the code word is {canary}"], home)
    reader = sqlean.connect(str(path), isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM memories").fetchone()
    try:
        started = time.monotonic()
        run = run_mem(["forget", "--query", canary, "--yes"], home)
        took = time.monotonic() - started
        left = _raw(home).count(canary.encode())
    finally:
        reader.execute("COMMIT")
        reader.close()
    reported = run.code != 0 or "wal" in run.stderr.lower() or "later" in run.stderr.lower()
    return Outcome(
        "10 forget while a reader holds a transaction > busy timeout",
        "text gone, or the leftover reported (exit code and message)",
        f"exit {run.code} after {took:.0f} s; text in files {left} times; "
        f"{run.stderr.strip()[:60] or 'no message'}",
        left == 0 or reported,
    )


CASES: list[Callable[[Path], Outcome]] = [
    global_options,
    cross_profile_delete,
    keyword_scope,
    forget_lineage,
    repl_history,
    secret_metadata,
    secret_forms,
    id_reuse,
    passphrase_on_plain,
]


def adversarial(work: Path, slow: bool = False) -> list[Outcome]:
    out = []
    for case in CASES:
        try:
            out.append(case(work))
        except Exception as err:  # a crash of the harness is a finding too
            out.append(Outcome(case.__name__, "(see issue 11)", f"harness error: {err!r}", False))
    if slow:
        out.append(forget_with_reader(work))
    else:
        out.append(
            Outcome(
                "10 forget while a reader holds a transaction > busy timeout",
                "text gone, or the leftover reported (exit code and message)",
                "not run: holds a reader 30 s+; use --slow",
                None,
            )
        )
    return out


def print_adversarial(results: list[Outcome]) -> None:
    print("\n## Adversarial (issue 11 items 1–10)")
    for r in results:
        mark = "skipped" if r.ok is None else ("ok" if r.ok else "observed ≠ expected")
        print(f"  {r.case}\n    expected: {r.expected}\n    observed: {r.observed}  [{mark}]")
    ok = sum(r.ok is True for r in results)
    skipped = sum(r.ok is None for r in results)
    print(
        f"  {ok}/{len(results)} as expected; {len(results) - ok - skipped} not; {skipped} skipped"
    )


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="mem-adversarial-") as tmp:
        print_adversarial(adversarial(Path(tmp), slow="--slow" in sys.argv))
    os._exit(0)
