"""Fault-tolerance figures (issue 4): concurrent writers, SIGKILLs, bad input, adversaries.

Run from the project root::

    .venv/bin/python bench/faults.py                      # full size, a few minutes
    .venv/bin/python bench/faults.py --writes 100 --kills 3 --cli-writes 10   # a quick look

Every ``mem`` here is a real process (``python -m cli.main``) with its own
``MEM_HOME``. The figures come from reading the database afterwards, never from
what the processes say about themselves. ``tests/test_faults.py`` runs the same
functions at small sizes and asserts on them.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import io
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT, ROOT / "tests"):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))
if str(ROOT / "bench") not in sys.path:  # last: a bench script must not shadow a package
    sys.path.append(str(ROOT / "bench"))

MEM = [sys.executable, "-m", "cli.main"]
MODEL = "openai/x"  # served by tests/fakeserver.py
DB = "mem.db"
TIMEOUT = 300


# --------------------------------------------------------------------- processes
def child_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a child ``mem``: its own MEM_HOME, no real keys."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MEM_", "OPENAI_", "LITELLM_API")) and not k.endswith("_API_KEY")
    }
    env.update(
        MEM_HOME=str(home),
        NO_COLOR="1",
        COLUMNS="200",
        LITELLM_LOCAL_MODEL_COST_MAP="True",
        PYTHONPATH=str(ROOT),
    )
    env.update(extra or {})
    return env


@dataclass
class Run:
    """One finished ``mem`` process."""

    args: list[str]
    code: int
    stdout: str
    stderr: str
    seconds: float = 0.0

    @property
    def error_lines(self) -> list[str]:
        return self.stderr.splitlines()

    @property
    def traceback(self) -> bool:
        return "Traceback" in self.stdout or "Traceback" in self.stderr

    @property
    def clean_error(self) -> bool:
        """Non-zero exit, exactly one stderr line ``Error: …``, no traceback."""
        lines = self.error_lines
        return (
            self.code != 0
            and len(lines) == 1
            and lines[0].startswith("Error: ")
            and not self.traceback
        )


def run_mem(
    args: list[str],
    home: Path,
    *,
    stdin: bytes | None = None,
    preexec: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
    timeout: float = TIMEOUT,
) -> Run:
    """Run ``mem ARGS`` to completion in a child process."""
    started = time.monotonic()
    proc = subprocess.run(
        [*MEM, *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=child_env(home, env),
        cwd=ROOT,
        preexec_fn=preexec,
        timeout=timeout,
    )
    return Run(
        args,
        proc.returncode,
        proc.stdout.decode("utf-8", "replace"),
        proc.stderr.decode("utf-8", "replace"),
        time.monotonic() - started,
    )


def spawn_mem(
    args: list[str], home: Path, env: dict[str, str] | None = None, stderr: Any = subprocess.PIPE
) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*MEM, *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        env=child_env(home, env),
        cwd=ROOT,
    )


# ---------------------------------------------------------------------- database
@contextlib.contextmanager
def open_db(path: Path) -> Iterator[Any]:
    """The file through mem's own connect() (sqlite-vec loaded, WAL recovery)."""
    from memory.storage.sqlite.db import connect

    conn = connect(path, create=False)
    try:
        yield conn
    finally:
        conn.close()


def integrity(path: Path) -> str:
    """``PRAGMA integrity_check`` plus FTS5's own check and index agreement."""
    with open_db(path) as conn:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall()]
        if rows != ["ok"]:
            return "; ".join(rows[:3])
        try:
            conn.execute(
                "INSERT INTO memories_fts(memories_fts, rank) VALUES ('integrity-check', 0)"
            )
        except Exception as err:  # reported, not raised
            return f"fts: {err}"
        counts = [
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in ("memories", "memory_vectors", "memories_vec")
        ]
        if len(set(counts)) != 1:
            return f"index mismatch: memories/vectors/vec0 = {counts}"
    return "ok"


def snapshot(path: Path) -> set[tuple[Any, ...]]:
    """Every committed message and memory, by id and content digest."""

    def digest(text: str) -> str:
        return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    with open_db(path) as conn:
        rows: set[tuple[Any, ...]] = {
            ("message", r[0], r[1], digest(r[2]))
            for r in conn.execute("SELECT id, conversation_id, content FROM messages")
        }
        rows |= {
            ("memory", r[0], r[1], digest(r[2]))
            for r in conn.execute("SELECT id, kind, content FROM memories")
        }
        rows |= {("conversation", r[0]) for r in conn.execute("SELECT id FROM conversations")}
    return rows


def count(path: Path, sql: str, params: list[Any] | None = None) -> int:
    with open_db(path) as conn:
        return int(conn.execute(sql, params or []).fetchone()[0])


def file_digest(path: Path) -> str:
    """The database file and its WAL, hashed (unchanged bytes: nothing written)."""
    h = hashlib.sha256()
    for p in (path, Path(f"{path}-wal")):
        if p.exists():
            h.update(p.read_bytes())
    return h.hexdigest()


def seed(home: Path, facts: int = 20, messages: int = 10) -> Path:
    """A database with committed facts and a conversation, closed cleanly."""
    from memory import MemoryStore

    home.mkdir(parents=True, exist_ok=True)
    path = home / DB
    with MemoryStore.open(path) as store:
        for i in range(facts):
            store.remember(f"seed fact {i}: the user likes item {i}")
        conv = store.new_conversation("seed chat", conversation_id="seed-chat")
        for i in range(messages):
            store.log_message(conv, "user" if i % 2 == 0 else "assistant", f"seed message {i}")
    return path


def copy_home(template: Path, home: Path) -> Path:
    home.mkdir(parents=True, exist_ok=True)
    for name in (DB, f"{DB}-wal"):
        if (template / name).exists():
            shutil.copy2(template / name, home / name)
    return home / DB


def probe_locked(path: Path) -> bool:
    """True when another connection holds the write lock right now."""
    import sqlean

    conn = sqlean.connect(str(path), timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlean.OperationalError as err:
        if "locked" in str(err) or "busy" in str(err):
            return True
        raise
    finally:
        conn.close()


# ------------------------------------------------------------------- concurrency
def _ready_and_wait(out: str) -> None:
    """Tell the parent this child is imported and ready, then wait for "go"."""
    Path(f"{out}.ready").touch()
    go = Path(out).parent / "go"
    while not go.exists():
        time.sleep(0.002)


def _engine_writer(home: str, n: int, tag: str, out: str) -> None:
    """A long-lived process with one connection (like the REPL): alternately a
    chat message and a memory, each its own transaction."""
    from memory import MemoryStore

    errors: list[str] = []
    _ready_and_wait(out)
    try:
        store = MemoryStore.open(Path(home) / DB)
    except Exception as err:  # every failure is a figure
        errors.append(f"open: {err}")
        Path(out).write_text(json.dumps({"ok": 0, "errors": errors * n}))
        return
    ok = 0
    conv = store.new_conversation(f"{tag} chat")
    for i in range(n):
        text = f"{tag} write {i}"
        try:
            if i % 2 == 0:
                store.log_message(conv, "user", text)
            else:
                store.remember(text)
            ok += 1
        except Exception as err:
            errors.append(f"{type(err).__name__}: {err}")
    store.close()
    Path(out).write_text(json.dumps({"ok": ok, "errors": errors}))


def _cli_writer(home: str, n: int, tag: str, out: str) -> None:
    """``mem remember`` N times through the real command (open, write, close each
    time), in one interpreter so the figure is not Python start-up."""
    os.environ["MEM_HOME"] = home
    import typer.main

    from cli.main import app

    command = typer.main.get_command(app)
    errors: list[str] = []
    ok = 0
    _ready_and_wait(out)
    for i in range(n):
        captured = io.StringIO()
        with contextlib.redirect_stderr(captured), contextlib.redirect_stdout(io.StringIO()):
            try:
                code = command.main(
                    ["remember", f"{tag} write {i}"], prog_name="mem", standalone_mode=False
                )
            except SystemExit as exc:
                code = exc.code
        if code in (0, None):
            ok += 1
        else:
            errors.append(captured.getvalue().strip() or f"exit {code}")
    Path(out).write_text(json.dumps({"ok": ok, "errors": errors}))


CHILDREN = {"engine-writer": _engine_writer, "cli-writer": _cli_writer}


def _spawn_child(kind: str, home: Path, n: int, tag: str, out: Path) -> Any:
    return subprocess.Popen(
        [
            sys.executable,
            __file__,
            "--child",
            kind,
            str(home),
            str(n),
            tag,
            str(out),
        ],
        env=child_env(home),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _is_lock_error(text: str) -> bool:
    lowered = text.lower()
    return "locked" in lowered or "busy" in lowered


@dataclass
class WriteReport:
    attempted: int = 0
    stored: int = 0
    lock_errors: int = 0
    other_errors: list[str] = field(default_factory=list)
    integrity: str = ""
    seconds: float = 0.0
    by_writer: dict[str, tuple[int, int]] = field(default_factory=dict)  # attempted, stored

    @property
    def lost(self) -> int:
        return self.attempted - self.stored


def concurrent_writes(work: Path, writes: int, cli_writes: int) -> WriteReport:
    """Two processes × ``writes`` writes at once on one file (a REPL-like engine
    writer and ``mem remember`` looped through the CLI), plus ``cli_writes``
    separate ``mem remember`` processes started one after another meanwhile."""
    home = work / "concurrent"
    seed(home, facts=3, messages=2)
    path = home / DB
    report = WriteReport()
    work.mkdir(parents=True, exist_ok=True)
    (work / "go").unlink(missing_ok=True)
    children = {
        tag: _spawn_child(kind, home, writes, tag, work / f"{tag}.json")
        for tag, kind in (("engine", "engine-writer"), ("cli", "cli-writer"))
    }
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and not all(
        (work / f"{tag}.json.ready").exists() or child.poll() is not None
        for tag, child in children.items()
    ):
        time.sleep(0.01)
    started = time.monotonic()
    (work / "go").touch()  # both start writing now
    procs: list[Run] = []
    for i in range(cli_writes):
        procs.append(run_mem(["remember", f"proc write {i}"], home))
    for tag, child in children.items():
        _, err = child.communicate(timeout=TIMEOUT * 4)
        if child.returncode != 0:
            report.other_errors.append(
                f"{tag} writer exit {child.returncode}: {err.decode()[-300:]}"
            )
    report.seconds = time.monotonic() - started
    errors = [r.stderr.strip() or f"exit {r.code}" for r in procs if r.code != 0]
    for tag in children:
        out = work / f"{tag}.json"
        if out.exists():
            errors += json.loads(out.read_text())["errors"]
    for text in errors:
        if _is_lock_error(text):
            report.lock_errors += 1
        else:
            report.other_errors.append(text)
    with open_db(path) as conn:
        texts = {r[0] for r in conn.execute("SELECT content FROM messages")}
        texts |= {
            r[0] for r in conn.execute("SELECT content FROM memories WHERE kind != 'message'")
        }
    for tag, n in (("engine", writes), ("cli", writes), ("proc", cli_writes)):
        stored = sum(f"{tag} write {i}" in texts for i in range(n))
        report.by_writer[tag] = (n, stored)
        report.attempted += n
        report.stored += stored
    report.integrity = integrity(path)
    return report


@dataclass
class RaceReport:
    trials: int = 0
    processes: int = 0
    failures: list[str] = field(default_factory=list)
    bad_databases: list[str] = field(default_factory=list)


def new_database_race(work: Path, trials: int, processes: int) -> RaceReport:
    """``processes`` × ``mem remember`` started together on a file that does not
    exist yet: every one must succeed, each memory with its vector."""
    report = RaceReport(trials, processes)
    for t in range(trials):
        home = work / f"race{t}"
        procs = [spawn_mem(["remember", f"race fact {i}"], home) for i in range(processes)]
        for proc in procs:
            _, err = proc.communicate(timeout=TIMEOUT)
            if proc.returncode != 0:
                report.failures.append(err.decode("utf-8", "replace").strip())
        path = home / DB
        state = integrity(path)
        found = count(path, "SELECT count(*) FROM memories WHERE kind = 'fact'")
        if state != "ok" or found != processes:
            report.bad_databases.append(f"trial {t}: {state}, {found}/{processes} facts")
    return report


@dataclass
class WaitReport:
    code: int
    waited: float
    held: float
    stored: bool
    stderr: str
    blocked: bool = False  # still waiting when the lock was released


def wait_for_lock(work: Path, hold: float) -> WaitReport:
    """Hold the write lock (an open write transaction in this process) for
    ``hold`` seconds while ``mem remember`` runs: it must wait, then succeed."""
    import sqlean

    home = work / "waiter"
    path = seed(home, facts=1, messages=0)
    conn = sqlean.connect(str(path), timeout=0, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO meta(key, value) VALUES ('bench-lock', 'held')")
    started = time.monotonic()
    proc = spawn_mem(["remember", "written while another process held the lock"], home)
    time.sleep(hold)
    blocked = proc.poll() is None
    conn.execute("COMMIT")
    held = time.monotonic() - started
    conn.close()
    _, err = proc.communicate(timeout=TIMEOUT)
    waited = time.monotonic() - started
    stored = bool(count(path, "SELECT count(*) FROM memories WHERE content LIKE 'written while%'"))
    return WaitReport(proc.returncode, waited, held, stored, err.decode().strip(), blocked)


@dataclass
class ImportWaitReport:
    import_code: int
    remember_code: int
    remember_started_locked: bool
    remember_seconds: float
    stored: bool
    stderr: str


def remember_during_import(work: Path, lines: int) -> ImportWaitReport:
    """A real long write transaction: ``mem remember`` started while an import of
    ``lines`` messages holds the write lock."""
    home = work / "import-wait"
    path = seed(home, facts=1, messages=0)
    source = work / "import-wait.jsonl"
    write_import_file(source, lines, "iw")
    importer = spawn_mem(["import", str(source)], home)
    deadline = time.monotonic() + TIMEOUT
    locked = False
    while importer.poll() is None and time.monotonic() < deadline:
        if probe_locked(path):
            locked = True
            break
        time.sleep(0.01)
    remember = run_mem(["remember", "remembered during a long import"], home)
    _, _ = importer.communicate(timeout=TIMEOUT)
    stored = bool(
        count(
            path, "SELECT count(*) FROM memories WHERE content = 'remembered during a long import'"
        )
    )
    return ImportWaitReport(
        importer.returncode,
        remember.code,
        locked,
        remember.seconds,
        stored,
        remember.stderr.strip(),
    )


# ----------------------------------------------------------------------- SIGKILL
def write_import_file(path: Path, lines: int, prefix: str) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for i in range(lines):
            record = {
                "conversation": f"{prefix}-conv{i // 50}",
                "role": "user" if i % 2 == 0 else "assistant",
                "speaker": "Ana" if i % 2 == 0 else None,
                "content": f"{prefix} line {i}: we talked about topic {i % 37}, café ☕ and more",
                "timestamp": f"2024-03-{1 + i % 28:02d}T10:{i % 60:02d}:00Z",
                "id": f"{prefix}-{i}",
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


@dataclass
class KillReport:
    kind: str
    kills: int = 0
    integrity_ok: int = 0
    rows_lost: int = 0
    problems: list[str] = field(default_factory=list)
    phases: dict[str, int] = field(default_factory=dict)
    calibration: str = ""

    def phase(self, name: str) -> None:
        self.phases[name] = self.phases.get(name, 0) + 1


def _kill(proc: subprocess.Popen[bytes]) -> bool:
    """SIGKILL unless it already finished; True when it was killed. Reaps the
    process and closes its pipes."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=TIMEOUT)
    return proc.returncode == -signal.SIGKILL


def kill_imports(work: Path, kills: int, lines: int, rng: random.Random) -> KillReport:
    """SIGKILL ``mem import`` (``lines`` messages) at random points, ``kills``
    times on one database: after each, integrity ok, nothing committed lost,
    and the file's messages all there or none."""
    report = KillReport("import")
    home = work / "kill-import"
    path = seed(home)
    # Calibrate on a copy: how long a whole import takes, and when it holds the lock.
    cal_home = work / "kill-import-cal"
    cal_path = copy_home(home, cal_home)
    cal_file = work / "cal.jsonl"
    write_import_file(cal_file, lines, "cal")
    started = time.monotonic()
    proc = spawn_mem(["import", str(cal_file)], cal_home)
    lock_seen: list[float] = []
    while proc.poll() is None:
        if probe_locked(cal_path):
            lock_seen.append(time.monotonic() - started)
        time.sleep(0.02)
    total = time.monotonic() - started
    _, err = proc.communicate(timeout=TIMEOUT)
    if proc.returncode != 0:
        report.problems.append(f"calibration import failed: {err.decode()[-300:]}")
        return report
    lock_from, lock_to = (lock_seen[0], lock_seen[-1]) if lock_seen else (0.0, total)
    report.calibration = (
        f"one import of {lines} lines takes {total:.1f} s; write lock held "
        f"{lock_from:.1f}–{lock_to:.1f} s"
    )
    for k in range(kills * 3):  # a run that ends before its kill is not counted
        if report.kills >= kills:
            break
        source = work / f"kill{k}.jsonl"
        write_import_file(source, lines, f"k{k}")
        before = snapshot(path)
        # Half the kills anywhere in the run, half inside the write transaction: those
        # wait until the lock is seen held (a calibrated delay missed it under load).
        proc = spawn_mem(["import", str(source)], home)
        if k % 2 == 0:
            time.sleep(rng.uniform(0.05, total))
        else:
            while proc.poll() is None and not probe_locked(path):
                time.sleep(0.005)
            time.sleep(rng.uniform(0, (lock_to - lock_from) / 4))
        locked = proc.poll() is None and probe_locked(path)
        killed = _kill(proc)
        report.kills += killed
        if not killed:
            report.phase("finished before the kill (not counted)")
        elif locked:
            report.phase("inside the write transaction")
        else:
            report.phase("outside the write transaction")
        state = integrity(path)
        report.integrity_ok += killed and state == "ok"
        if state != "ok":
            report.problems.append(f"kill {k}: {state}")
        after = snapshot(path)
        lost = before - after
        report.rows_lost += len(lost)
        imported = count(
            path, "SELECT count(*) FROM messages WHERE conversation_id LIKE ?", [f"k{k}-conv%"]
        )
        if imported not in (0, lines):
            report.problems.append(f"kill {k}: {imported} of {lines} lines imported (not 0 or all)")
        report.phase(f"import left {'all' if imported == lines else 'none'}")
    return report


def _wait_for_output(
    proc: subprocess.Popen[bytes], seen: list[tuple[float, int]], size: int
) -> None:
    """Until ``size`` bytes reached stdout (or the process ended)."""
    deadline = time.monotonic() + TIMEOUT
    while sum(n for _, n in seen) < size and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)


def kill_turns(
    work: Path,
    kills: int,
    rng: random.Random,
    reply_words: int = 3000,
    calibrate: bool = True,
) -> KillReport:
    """SIGKILL ``mem ask`` at random points of a turn against the fake server
    (a long streamed reply, then extraction and summary calls). Kills cycle
    through four strata, each at a random moment within it: anywhere in the
    turn, mid-stream (after the first reply chunk reached stdout), before the
    reply (start-up, logging, retrieval, the model's delay) and after the reply
    was shown (extraction, consolidation, summary). Without calibration only
    the first two, "anywhere" meaning the first 3 s."""
    from fakeserver import FakeLLMServer

    report = KillReport("turn")
    home = work / "kill-turn"
    path = seed(home)
    server = FakeLLMServer().start()
    reply = " ".join(f"word{i}" for i in range(reply_words))

    def script(first_delay: float) -> None:
        server.clear()
        server.enqueue(reply, delay=first_delay)  # the streamed reply
        server.enqueue("OK", delay=0.3)  # extraction
        server.enqueue("A summary.", delay=0.3)  # summary folding

    errors = work / "turn-stderr.txt"

    def start(text: str) -> tuple[subprocess.Popen[bytes], list[tuple[float, int]], Any]:
        with open(errors, "wb") as err_file:
            proc = spawn_mem(["ask", "--model", MODEL, text], home, server.env(), stderr=err_file)
        seen: list[tuple[float, int]] = []
        t0 = time.monotonic()

        def read() -> None:
            assert proc.stdout is not None
            while chunk := os.read(proc.stdout.fileno(), 65536):
                seen.append((time.monotonic() - t0, len(chunk)))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        return proc, seen, reader

    def finish(proc: subprocess.Popen[bytes], reader: Any, kill: bool) -> bool:
        if kill and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=TIMEOUT)
        reader.join(timeout=TIMEOUT)
        assert proc.stdout is not None
        proc.stdout.close()
        return proc.returncode == -signal.SIGKILL

    try:
        total, first, span = 3.0, 3.0, 0.3  # uncalibrated: the first 3 s, or ≤0.3 s in
        if calibrate:
            script(0.3)
            t0 = time.monotonic()
            proc, seen, reader = start("calibration turn: hello")
            finish(proc, reader, kill=False)
            total = time.monotonic() - t0
            if proc.returncode != 0:
                report.problems.append(f"calibration turn failed: {errors.read_text()[-300:]}")
                return report
            first = seen[0][0] if seen else total
            span = (seen[-1][0] if seen else total) - first
            report.calibration = (
                f"one turn takes {total:.1f} s; the {reply_words}-word reply streams "
                f"from {first:.1f} s for {span:.1f} s"
            )
        full = len(reply.encode()) + 1
        for k in range(kills * 3):  # a turn that ends before its kill is not counted
            if report.kills >= kills:
                break
            text = f"kill turn {k} {rng.randrange(10**9)}"
            before = snapshot(path)
            script(rng.uniform(0.0, 0.5))
            proc, seen, reader = start(text)
            stratum = k % (4 if calibrate else 2)
            if stratum == 0:
                time.sleep(rng.uniform(0.05, total))
            elif stratum == 1:
                _wait_for_output(proc, seen, 1)
                time.sleep(rng.uniform(0.0, span))
            elif stratum == 2:
                time.sleep(rng.uniform(0.05, first))
            else:
                _wait_for_output(proc, seen, full)
                time.sleep(rng.uniform(0.0, max(total - first - span, 0.1)))
            killed = finish(proc, reader, kill=True)
            got = sum(n for _, n in seen)
            report.kills += killed
            if not killed:
                report.phase("finished before the kill (not counted)")
            elif got == 0:
                report.phase("before the reply started")
            elif got < full:
                report.phase("mid-stream")
            else:
                report.phase("after the reply was shown")
            state = integrity(path)
            report.integrity_ok += killed and state == "ok"
            if state != "ok":
                report.problems.append(f"kill {k}: {state}")
            after = snapshot(path)
            report.rows_lost += len(before - after)
            with open_db(path) as conn:
                user = conn.execute(
                    "SELECT conversation_id FROM messages WHERE role = 'user' AND content = ?",
                    [text],
                ).fetchone()
                replies = (
                    [
                        r[0]
                        for r in conn.execute(
                            "SELECT content FROM messages WHERE conversation_id = ? "
                            "AND role = 'assistant'",
                            [user[0]],
                        )
                    ]
                    if user
                    else []
                )
            if got and user is None:
                report.problems.append(f"kill {k}: reply was streaming but the message is gone")
            if any(r != reply for r in replies):
                report.problems.append(f"kill {k}: a torn reply was stored")
            if got >= full and not replies:  # the final newline is written after the log
                report.problems.append(f"kill {k}: the reply was shown but not stored")
            if user is not None:
                report.phase("user message stored")
            if replies:
                report.phase("reply stored")
    finally:
        server.stop()
    return report


# --------------------------------------------------------------------- bad input
libc = ctypes.CDLL(None, use_errno=True)
PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3


def _drop_file_capabilities() -> None:  # runs in the child between fork and exec
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            os._exit(97)


def permission_preexec(work: Path) -> tuple[Callable[[], None] | None, str]:
    """How to make file permissions bind a child: nothing for a normal user; as
    root, drop the capabilities that bypass them (CAP_DAC_OVERRIDE, …) from the
    child's bounding set before exec. Returns (preexec, "") or (None, reason)."""
    if os.geteuid() != 0:
        return None, ""
    folder = work / "perm-probe"
    folder.mkdir(exist_ok=True)
    folder.chmod(0o500)
    try:
        probe = subprocess.run(
            [sys.executable, "-c", f"open({str(folder / 'x')!r}, 'w')"],
            preexec_fn=_drop_file_capabilities,
            capture_output=True,
        )
    finally:
        folder.chmod(0o700)
    if probe.returncode == 0:
        return None, "running as root and dropping CAP_DAC_OVERRIDE did not make chmod bind"
    if b"PermissionError" not in probe.stderr:
        return None, f"cannot drop capabilities as root (exit {probe.returncode})"
    return _drop_file_capabilities, ""


def file_size_limit(limit: int) -> Callable[[], None]:
    """A full disk, simulated: writes past ``limit`` bytes fail with EFBIG."""

    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec


@dataclass
class Case:
    """One bad input: what to run, and words its error must contain (the fix)."""

    name: str
    args: list[str]  # "FILE" stands for the case's input file
    expect: tuple[str, ...]
    stdin: bytes | None = None
    file: bytes | Callable[[], bytes] | None = None
    setup: Callable[[Path], None] | None = None  # damage or lock down MEM_HOME
    restore: Callable[[Path], None] | None = None
    corrupt: bool = False  # damaged on purpose: "intact" then means unchanged bytes
    permissions: bool = False  # needs file permissions to bind (see permission_preexec)
    file_size_limit: int = 0  # simulate a full disk
    missing_home: bool = False  # MEM_HOME does not exist, under a read-only parent

    @property
    def preexec_free(self) -> bool:
        return not (self.permissions or self.file_size_limit)


@dataclass
class CaseResult:
    case: Case
    run: Run | None
    intact: bool
    missing: list[str] = field(default_factory=list)
    skipped: str = ""

    @property
    def ok(self) -> bool:
        """Handled as promised. A skipped case is not handled: it is counted apart."""
        return not self.skipped and (
            self.run is not None and self.run.clean_error and self.intact and not self.missing
        )


BINARY = random.Random(7).randbytes(4096)  # holds NUL bytes and invalid UTF-8
TEN_MB = (b"lorem ipsum dolor sit amet, " * 400_000)[:10_000_000]
GOOD = b'{"conversation": "paste", "role": "user", "content": "fine line"}\n'
ASK = ["ask", "--model", MODEL]


def _line(content: bytes) -> bytes:
    return b'{"conversation": "p", "role": "user", "content": "' + content + b'"}\n'


def _random_bytes_db(home: Path) -> None:
    (home / DB).write_bytes(random.Random(3).randbytes(64 * 1024))


def _damage_page(home: Path) -> None:
    """Overwrite the memories table's root page with garbage: a real SQLite file
    with one damaged page in the middle."""
    path = home / DB
    with open_db(path) as conn:
        page = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'memories'").fetchone()
        size = conn.execute("PRAGMA page_size").fetchone()[0]
    garbage = bytes([0xFF]) + random.Random(5).randbytes(size - 1)  # 0xFF: no page type
    with open(path, "r+b") as handle:
        handle.seek((page[0] - 1) * size)
        handle.write(garbage)


def _truncate(home: Path) -> None:
    os.truncate(home / DB, (home / DB).stat().st_size // 3)


def _newer_schema(home: Path) -> None:
    with open_db(home / DB) as conn:
        conn.execute(
            "INSERT INTO _sqlite_migrations(migration_set, name, applied_at) "
            "VALUES ('mem', 'm999_from_the_future', '2099-01-01')"
        )


def _big_import() -> bytes:
    return b"".join(
        json.dumps(
            {"conversation": f"full{i // 50}", "role": "user", "content": f"line {i}"}
        ).encode()
        + b"\n"
        for i in range(800)
    )


CASES: list[Case] = [
    Case("ask: invalid UTF-8 on stdin", ASK, ("UTF-8",), b"caf\xe9 au lait\n"),
    Case("ask: binary on stdin", ASK, ("binary",), BINARY),
    Case("ask: NUL bytes on stdin", ASK, ("NUL",), b"hello\x00world\n"),
    Case("ask: 10 MB paste", ASK, ("1 MB", "shorter", "mem add"), TEN_MB),
    Case("ask: empty input", ASK, ("Nothing to ask", "pipe"), b""),
    Case("ask: blank input", ASK, ("Nothing to ask",), b" \n\t\n\n"),
    Case("search -: invalid UTF-8", ["search", "-"], ("UTF-8",), b"seed fact\n\xff\xfe\n"),
    Case("search -: binary", ["search", "-"], ("binary",), BINARY),
    Case("search -: NUL bytes", ["search", "-"], ("NUL",), b"seed\x00fact\n"),
    Case("import -: invalid UTF-8", ["import", "-"], (":2:", "UTF-8"), GOOD + _line(b"caf\xe9")),
    Case("import -: binary", ["import", "-"], (":1:", "nothing was imported"), BINARY),
    Case("import -: raw NUL byte", ["import", "-"], (":2:", "JSON"), GOOD + _line(b"a\x00b")),
    Case("import -: escaped NUL", ["import", "-"], (":2:", "NUL"), GOOD + _line(b"a\\u0000b")),
    Case("import -: lone surrogate", ["import", "-"], (":1:", "Unicode"), _line(b"a\\ud800b")),
    Case("import -: nested too deep", ["import", "-"], (":1:", "JSON"), b"[" * 100_000 + b"\n"),
    Case(
        "import: malformed line 3",
        ["import", "FILE"],
        ("bad.jsonl:3:", "JSON", "nothing was imported"),
        file=GOOD + GOOD.replace(b"fine", b"ok") + b'{"conversation": "paste",\n' + GOOD,
    ),
    Case(
        "import: line missing content",
        ["import", "FILE"],
        ("bad.jsonl:2:", '"content"', "nothing was imported"),
        file=GOOD + b'{"conversation": "paste", "role": "user"}\n',
    ),
    Case(
        "db: random bytes",
        ["list"],
        ("not a mem database", "move it away"),
        setup=_random_bytes_db,
        corrupt=True,
    ),
    Case(
        "db: damaged page (list)", ["list"], ("damaged", "backup"), setup=_damage_page, corrupt=True
    ),
    Case(
        "db: damaged page (search)",
        ["search", "seed fact"],
        ("damaged", "backup"),
        setup=_damage_page,
        corrupt=True,
    ),
    Case("db: truncated file", ["list"], ("damaged", "backup"), setup=_truncate, corrupt=True),
    Case("db: newer schema", ["remember", "x"], ("newer mem", "upgrade"), setup=_newer_schema),
    Case(
        "read-only data folder: remember",
        ["remember", "x"],
        ("writable",),
        setup=lambda home: home.chmod(0o500),
        restore=lambda home: home.chmod(0o700),
        permissions=True,
    ),
    Case(
        "read-only data folder: list",
        ["list"],
        ("writable",),
        setup=lambda home: home.chmod(0o500),
        restore=lambda home: home.chmod(0o700),
        permissions=True,
    ),
    Case(
        "read-only database file",
        ["remember", "x"],
        ("writable",),
        setup=lambda home: (home / DB).chmod(0o400),
        restore=lambda home: (home / DB).chmod(0o600),
        permissions=True,
    ),
    Case(
        "MEM_HOME missing, read-only parent",
        ["remember", "x"],
        ("writable", "MEM_HOME"),
        permissions=True,
        missing_home=True,
    ),
    Case(
        "disk full: remember",
        ["remember", "big " + "x" * 100_000],
        ("disk", "free"),
        file_size_limit=64 * 1024,
    ),
    Case(
        "disk full: import",
        ["import", "FILE"],
        ("disk", "free", "nothing stored was lost"),
        file=_big_import,
        file_size_limit=256 * 1024,
    ),
]


def run_case(case: Case, work: Path, template: Path, permissions: tuple[Any, str]) -> CaseResult:
    """Run one bad input against a copy of the seeded database."""
    box = work / "".join(c if c.isalnum() else "-" for c in case.name)
    home = box / "home"
    path = copy_home(template, home)
    preexec: Callable[[], None] | None = None
    if case.permissions:
        preexec, reason = permissions
        if reason:
            return CaseResult(case, None, True, skipped=reason)
    if case.file_size_limit:
        preexec = file_size_limit(case.file_size_limit)
    args = list(case.args)
    if case.file is not None:
        source = box / "bad.jsonl"
        source.write_bytes(case.file() if callable(case.file) else case.file)
        args = [str(source) if a == "FILE" else a for a in args]
    before = snapshot(path)
    locked = home
    if case.missing_home:
        locked = box / "read-only-parent"
        locked.mkdir()
        home_for_run = locked / "home"
        locked.chmod(0o555)
    else:
        home_for_run = home
    if case.setup:
        case.setup(home)
    digest = file_digest(path)
    try:
        run = run_mem(args, home_for_run, stdin=case.stdin, preexec=preexec)
    finally:
        if case.missing_home:
            locked.chmod(0o755)
        elif case.restore:
            case.restore(home)
    if case.corrupt:
        intact = file_digest(path) == digest
    else:
        intact = snapshot(path) == before and integrity(path) == "ok"
    missing = [w for w in case.expect if w.lower() not in run.stderr.lower()]
    return CaseResult(case, run, intact, missing)


def bad_inputs(work: Path, cases: list[Case] | None = None, workers: int = 1) -> list[CaseResult]:
    """Every case in its own copy of a seeded database. Cases that need a
    preexec_fn run first, one by one, while this process has no other thread
    (preexec_fn is not safe with threads); the rest then on ``workers`` threads."""
    from concurrent.futures import ThreadPoolExecutor

    template = work / "template"
    seed(template)
    permissions = permission_preexec(work)
    chosen = cases or CASES
    done = {c.name: run_case(c, work, template, permissions) for c in chosen if not c.preexec_free}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {
            c.name: pool.submit(run_case, c, work, template, permissions)
            for c in chosen
            if c.preexec_free
        }
        done.update({name: f.result() for name, f in futures.items()})
    return [done[c.name] for c in chosen]


# -------------------------------------------------------------------------- main
def _print_writes(report: WriteReport, writes: int, cli_writes: int) -> None:
    print(
        f"\n## Concurrent writers: 2 processes × {writes:,} writes, "
        f"plus {cli_writes} `mem remember` processes"
    )
    for tag, (attempted, stored) in report.by_writer.items():
        print(f"  {tag:<7} attempted {attempted:>6,}  stored {stored:>6,}")
    print(f"  writes attempted {report.attempted:,}, stored {report.stored:,}, lost {report.lost}")
    print(f"  lock errors {report.lock_errors}, other errors {len(report.other_errors)}")
    for text in report.other_errors[:5]:
        print(f"    {text}")
    print(f"  integrity_check: {report.integrity}; {report.seconds:.1f} s wall")


def _print_kills(report: KillReport) -> None:
    article = "an" if report.kind[0] in "aeiou" else "a"
    print(f"\n## SIGKILL during {article} {report.kind}: {report.calibration}")
    print(
        f"  kills {report.kills}, integrity ok {report.integrity_ok}/{report.kills}, "
        f"committed rows lost {report.rows_lost}"
    )
    for name, n in sorted(report.phases.items()):
        print(f"    {name}: {n}")
    for text in report.problems[:10]:
        print(f"  PROBLEM {text}")


def _print_cases(results: list[CaseResult]) -> None:
    print("\n## Bad input")
    print(f"  {'case':<36} {'exit':>4}  {'traceback':<9} {'intact':<6}  stderr")
    for r in results:
        if r.skipped:
            print(f"  {r.case.name:<36} {'skip':>4}  {'':<9} {'':<6}  ({r.skipped})")
            continue
        assert r.run is not None
        line = r.run.stderr.strip().replace("\n", " ⏎ ")
        flag = "" if r.ok else "   <-- FAIL" + (f" (missing {r.missing})" if r.missing else "")
        print(
            f"  {r.case.name:<36} {r.run.code:>4}  {'yes' if r.run.traceback else 'no':<9} "
            f"{'yes' if r.intact else 'NO':<6}  {line}{flag}"
        )
    ok = sum(r.ok for r in results)
    skipped = sum(bool(r.skipped) for r in results)
    print(
        f"  {ok}/{len(results)} handled (exit ≠ 0, one 'Error:' line naming the fix, no "
        f"traceback, data intact); {len(results) - ok - skipped} failed; {skipped} skipped "
        "(not run here: not counted as handled)"
    )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        kind, home, n, tag, out = sys.argv[2:7]
        CHILDREN[kind](home, int(n), tag, out)
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--writes", type=int, default=1000, help="writes per writer process")
    parser.add_argument("--cli-writes", type=int, default=100, help="separate `mem remember` runs")
    parser.add_argument("--kills", type=int, default=20, help="SIGKILLs of each kind")
    parser.add_argument("--import-lines", type=int, default=5000, help="lines per killed import")
    parser.add_argument("--race-trials", type=int, default=5, help="new-database races")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: time)")
    parser.add_argument("--only", choices=["writes", "kills", "bad", "adversarial"], default=None)
    parser.add_argument("--slow", action="store_true", help="also the 30 s+ adversarial case")
    opts = parser.parse_args()
    rng_seed = opts.seed if opts.seed is not None else int(time.time())
    rng = random.Random(rng_seed)
    print(f"# bench/faults.py (random seed {rng_seed}; {os.cpu_count()} cores)")
    with tempfile.TemporaryDirectory(prefix="mem-faults-") as tmp:
        work = Path(tmp)
        work.chmod(0o755)
        if opts.only in (None, "writes"):
            writes = concurrent_writes(work, opts.writes, opts.cli_writes)
            _print_writes(writes, opts.writes, opts.cli_writes)
            race = new_database_race(work, opts.race_trials, 4)
            print(
                f"\n## New database opened by {race.processes} processes at once, "
                f"{race.trials} times"
            )
            print(
                f"  failed processes {len(race.failures)}, bad databases {len(race.bad_databases)}"
            )
            for text in (race.failures + race.bad_databases)[:5]:
                print(f"    {text}")
            wait = wait_for_lock(work, 3.0)
            print("\n## `mem remember` while another process holds the write lock for 3 s")
            print(
                f"  exit {wait.code}, finished after {wait.waited:.1f} s (lock released at "
                f"{wait.held:.1f} s), stored {'yes' if wait.stored else 'NO'} {wait.stderr}"
            )
            during = remember_during_import(work, opts.import_lines * 2)
            print(f"\n## `mem remember` during a {opts.import_lines * 2:,}-line import")
            print(
                "  started while the import held the lock: "
                f"{'yes' if during.remember_started_locked else 'no'}; "
                f"remember exit {during.remember_code} after {during.remember_seconds:.1f} s, "
                f"stored {'yes' if during.stored else 'NO'}; import exit {during.import_code} "
                f"{during.stderr}"
            )
        if opts.only in (None, "kills"):
            _print_kills(kill_imports(work, opts.kills, opts.import_lines, rng))
            _print_kills(kill_turns(work, opts.kills, rng))
        if opts.only in (None, "bad"):
            from bad_input_more import bad_inputs_more, print_more

            _print_cases(bad_inputs(work, workers=2))
            print_more(bad_inputs_more(work))
        if opts.only in (None, "adversarial"):
            from adversarial import adversarial, print_adversarial

            print_adversarial(adversarial(work, slow=opts.slow))


if __name__ == "__main__":
    main()
