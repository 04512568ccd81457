"""`mem eval DIR`: measure recall on a folder of questions and print a table."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

import memory
from memory.config import is_server_url
from memory.errors import UsageError

from . import render
from .app import INT64_MAX, MAX_RESULTS, Bounded, DbOption, JsonOption, ProfileOption, command
from .commands import open_memory

if TYPE_CHECKING:
    from memory import EvalReport

STAGES = {
    "importing": "importing",
    "extracting": "extracting facts",
    "episodes": "building episodes",
    "searching": "searching",
}


def _pct(value: float) -> str:
    return f"{value:.3f}"


def print_report(report: EvalReport, title: str) -> None:
    from rich.table import Table

    table = Table(
        title=title,
        caption="≤N: recall within N tokens of memories in the prompt",
        show_edge=False,
        pad_edge=False,
        box=None,
    )
    table.add_column("category", no_wrap=True)
    table.add_column("n", justify="right")
    for k in report.ks:
        table.add_column(f"R@{k}", justify="right")
    table.add_column("MRR", justify="right")
    for b in report.budgets:
        table.add_column(f"≤{b}", justify="right")
    groups = [*report.categories, report.overall]
    for i, group in enumerate(groups):
        table.add_row(
            group.label,
            str(group.questions),
            *(_pct(group.recall[k]) for k in report.ks),
            _pct(group.mrr),
            *(_pct(group.budget_recall[b]) for b in report.budgets),
            end_section=i == len(groups) - 2,
        )
    lines = [
        f"search latency p50 {report.latency_p50_ms:.1f} ms, p95 {report.latency_p95_ms:.1f} ms "
        f"(in process, top {max(report.ks)})"
    ]
    if report.conversation_tokens:
        n = len(report.conversation_tokens)
        lines.append(
            f"whole conversation: {report.mean_conversation_tokens:,.0f} tokens on average "
            f"({n} conversation{'s' if n != 1 else ''})"
        )
    if report.episodes is not None:
        lines.append(f"episodes: {report.episodes} built at import (offline)")
    if report.fact_keys is not None:
        fk = report.fact_keys
        lines.append(f"fact keys: {fk.facts_added} added from {fk.windows} windows")
    skipped = f", {report.skipped} questions not scored" if report.skipped else ""
    lines.append(
        f"embedder {report.embedder} · tokens {report.encoding} · "
        f"{report.database} database{skipped}"
    )
    if 10 in report.ks:
        lines.append(f"R@10 {report.overall.recall[10]:.3f}")
    con = render.out()
    con.print(table)
    for line in lines:
        con.print(line, soft_wrap=True)  # whole lines, for people and for grep


@command("eval")
def eval_(
    directory: Annotated[
        str,
        typer.Argument(
            help="Folder with questions.jsonl (and messages.jsonl unless --live).", metavar="DIR"
        ),
    ],
    live: Annotated[
        bool,
        typer.Option("--live", help="Search your own database instead of importing DIR."),
    ] = False,
    k: Annotated[
        list[int] | None,
        typer.Option(
            "--k",
            help="Also report recall@K (repeatable).",
            click_type=Bounded(
                1, MAX_RESULTS, below="Invalid --k or budget: use whole numbers of at least 1."
            ),
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            "-n",
            help="Score only the first N questions.",
            click_type=Bounded(1, INT64_MAX),
        ),
    ] = None,
    extract: Annotated[
        bool,
        typer.Option("--extract", help="Index fact keys with a model before searching."),
    ] = False,
    model: Annotated[
        str | None,
        typer.Option(help="Model for --extract and for counting tokens (default: configured)."),
    ] = None,
    episodes: Annotated[
        bool,
        typer.Option(
            "--episodes/--no-episodes",
            help="Make each imported session an episode (offline) before searching.",
        ),
    ] = True,
    db: DbOption = None,
    profile: ProfileOption = None,
    as_json: JsonOption = False,
) -> None:
    """Measure recall@k, MRR, latency and recall within a token budget on DIR's questions."""
    if extract and live:
        raise UsageError(
            "--extract indexes a temporary import: run `mem import FILE --extract` on your "
            "database instead of combining it with --live."
        )
    server = db if db and not live and is_server_url(db) else None
    if db and not live and server is None:
        # (a postgresql:// URL is the server the temporary database is made on)
        raise UsageError("--db names the database for --live: add --live to evaluate it.")
    progress, update = render.stage_progress(STAGES)
    with progress:
        if live:
            with open_memory(db, profile) as mem:
                report = mem.eval(directory, ks=k, model=model, limit=limit, progress=update)
        else:
            report = memory.evaluate(
                directory,
                ks=k,
                model=model,
                limit=limit,
                extract=extract,
                profile=profile,
                progress=update,
                server=server,
                episodes=episodes,
            )
    if report.fact_keys is not None and report.fact_keys.failed:
        fk = report.fact_keys
        render.status(
            f"Warning: fact extraction failed for {fk.failed} of {fk.windows} windows "
            f"(first: {fk.first_error})."
        )
    if as_json:
        render.emit_json(report.to_dict())
        return
    print_report(report, f"Recall on {report.overall.questions} questions of {directory}")
