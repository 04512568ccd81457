"""Plugins: toy embedders, chat models, document readers and storage backends
registered through the real hooks, and an installed plugin read from its entry
point (in a subprocess, from a dist-info on a temporary ``sys.path`` entry)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from memory import MemoryStore
from memory.errors import UnknownModelError, UsageError
from memory.hookspecs import Register
from memory.models.embed import HashingEmbedder, get_embedder
from memory.models.llm import ChatModel
from memory.plugins import (
    PluginError,
    hookimpl,
    known_names,
    register_plugin,
    storage_backend,
    unregister_plugin,
)
from memory.retrieval.search import find
from memory.storage import StorageBackend
from memory.storage.sqlite import SQLiteBackend

ROOT = Path(__file__).resolve().parent.parent
REPLY = "Your dog is called Rex."


class ToyEmbedder:
    """Deterministic 16-dimensional vectors under a name of its own."""

    name = "toy-embed-16"
    dim = 16

    def __init__(self) -> None:
        self.inner = HashingEmbedder(16)
        self.calls = 0

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += 1
        return self.inner.embed(texts)


class FixedModel:
    """A chat model that always says the same thing, and remembers what it was sent."""

    def __init__(self, chat: ChatModel) -> None:
        self.chat = chat
        self.sent: list[list[dict[str, str]]] = []

    def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
        self.sent.append(messages)
        yield from ("Your dog ", "is called ", "Rex.")


class InMemoryBackend:
    """A storage backend as a test double: just enough to prove the factory is used."""

    def __init__(self, path: Any = None, **options: Any) -> None:
        self.path = path
        self.options = options


class ToyPlugin:
    """One plugin object offering one thing of each kind, through the hooks."""

    def __init__(self) -> None:
        self.embedder = ToyEmbedder()
        self.models: list[FixedModel] = []

    def model(self, chat: ChatModel) -> FixedModel:
        made = FixedModel(chat)
        self.models.append(made)
        return made

    @hookimpl
    def register_embedders(self, register: Register) -> None:
        register("toy-embed-16", lambda: self.embedder)

    @hookimpl
    def register_chat_models(self, register: Register) -> None:
        register("toy", self.model)

    @hookimpl
    def register_document_readers(self, register: Register) -> None:
        register(".toy", lambda path: Path(path).read_text(encoding="utf-8").upper())

    @hookimpl
    def register_storage_backends(self, register: Register) -> None:
        register("toy-memory", InMemoryBackend)


@pytest.fixture
def toy() -> Iterator[ToyPlugin]:
    plugin = ToyPlugin()
    register_plugin(plugin, name="toy")
    yield plugin
    unregister_plugin(plugin)


def test_toy_embedder_is_used_by_the_store(toy: ToyPlugin, mem_home: Path) -> None:
    with MemoryStore.open(mem_home / "mem.db", embedder="toy-embed-16") as store:
        assert store.embedder is toy.embedder
        store.remember("My dog is called Rex")
        assert "Rex" in find(store, "dog name")[0].content
    assert toy.embedder.calls >= 2
    # The database now says toy-embed-16: opening it again finds the plugin's embedder.
    with MemoryStore.open(mem_home / "mem.db") as store:
        assert store.embedder.name == "toy-embed-16"


def test_toy_embedder_from_the_command_line(
    toy: ToyPlugin, cli: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEM_EMBEDDER", "toy-embed-16")
    cli("remember", "My dog is called Rex")
    assert cli.json("stats")["embedder"] == "toy-embed-16"
    assert "Rex" in cli.json("search", "dog")[0]["content"]


def test_a_plugin_wins_over_a_builtin_name_until_unregistered() -> None:
    class Wider:
        @hookimpl
        def register_embedders(self, register: Register) -> None:
            register("hash-256", lambda: HashingEmbedder(512))

    plugin = Wider()
    register_plugin(plugin)
    try:
        assert get_embedder("hash-256").dim == 512
    finally:
        unregister_plugin(plugin)
    assert get_embedder("hash-256").dim == 256


def test_unknown_embedder_lists_the_plugins_names(toy: ToyPlugin) -> None:
    with pytest.raises(UsageError) as err:
        get_embedder("hash-many")
    message = str(err.value)  # other test modules may have registered names too
    assert message.startswith("Unknown embedder 'hash-many': use minilm-static-256, hash-256, ")
    assert message.endswith(", toy-embed-16 or a litellm embedding model name.")


def test_a_full_ask_turn_runs_through_the_toy_model(toy: ToyPlugin, cli: Any) -> None:
    cli("remember", "My dog is called Rex")
    result = cli("ask", "--model", "toy/fixed", "--no-stream", "What is my dog called?")
    assert result.stdout == REPLY + "\n"
    sent = next(m for made in toy.models for m in made.sent)  # the turn's call comes first
    assert sent[-1] == {"role": "user", "content": "What is my dog called?"}
    assert any("My dog is called Rex" in m["content"] for m in sent)  # retrieved memory
    data = cli.json("ask", "--model", "toy/fixed", "-c", "And its name again?")
    assert data["reply"] == REPLY
    # Both turns were logged, the first conversation continued by -c.
    messages = cli.json("conversations")
    assert messages[0]["messages"] == 4


def test_show_prompt_names_the_plugin(toy: ToyPlugin, cli: Any) -> None:
    out = cli("ask", "--model", "toy", "--show-prompt", "hello").stdout
    assert out.splitlines()[0] == "model toy via the plugin toy"
    data = cli.json("ask", "--model", "toy/x", "--show-prompt", "hello")
    assert data["model"] == {"name": "toy/x", "path": "plugin"}


def test_builtin_prefixes_keep_their_routes(toy: ToyPlugin) -> None:
    assert ChatModel("openai/gpt-4o-mini").route == "openai"
    assert ChatModel("gpt-4o-mini").route == "openai"
    assert ChatModel("anthropic/claude-3-5-haiku-latest").route == "litellm"
    assert ChatModel("hosted_vllm/m").route == "litellm"
    assert ChatModel("hosted_vllm/m", api_base="http://127.0.0.1:1/v1").route == "openai"
    assert ChatModel("local/gemma-3-270m").route == "local"
    assert ChatModel("toy/anything").route == "plugin"


def test_a_failing_plugin_model_is_a_model_error(cli: Any) -> None:
    class Broken:
        def stream(self, messages: list[dict[str, str]]) -> Iterator[str]:
            raise RuntimeError("the toy broke")
            yield ""

    class BrokenPlugin:
        @hookimpl
        def register_chat_models(self, register: Register) -> None:
            register("broken", lambda chat: Broken())

    plugin = BrokenPlugin()
    register_plugin(plugin)
    try:
        result = cli("ask", "--model", "broken/x", "hi", code=None)
    finally:
        unregister_plugin(plugin)
    assert result.exit_code != 0
    assert "broken/x (a plugin's model) failed: the toy broke" in result.stderr


def test_unknown_model_lists_the_plugins_prefixes(toy: ToyPlugin) -> None:
    with pytest.raises(UnknownModelError) as err:
        list(ChatModel("nonexistent-model-xyz").stream([{"role": "user", "content": "hi"}]))
    assert "or ollama/llama3, or a plugin's: toy; see" in str(err.value)


def test_toy_reader_indexes_a_new_suffix(toy: ToyPlugin, cli: Any, tmp_path: Path) -> None:
    folder = tmp_path / "notes"
    folder.mkdir()
    (folder / "garden.toy").write_text("The tomatoes grow by the south wall.\n")
    (folder / "photo.xyz").write_text("not a format anyone reads\n")
    report = cli.json("add", str(folder))
    assert (report["new"], report["chunks_added"]) == (1, 1)
    assert report["skipped"] == {"unsupported": 1}
    docs = cli.json("docs")
    assert [(Path(d["path"]).name, d["format"]) for d in docs] == [("garden.toy", ".toy")]
    hits = cli.json("search", "tomatoes south wall")
    assert hits[0]["content"] == "THE TOMATOES GROW BY THE SOUTH WALL."


def test_a_failing_reader_skips_the_file(cli: Any, tmp_path: Path) -> None:
    class BadReader:
        @hookimpl
        def register_document_readers(self, register: Register) -> None:
            register(".bad", lambda path: [42])

    plugin = BadReader()
    register_plugin(plugin)
    try:
        (tmp_path / "a.bad").write_text("x\n")
        (tmp_path / "b.md").write_text("# B\n\nfine\n")
        report = cli.json("add", str(tmp_path))
    finally:
        unregister_plugin(plugin)
    assert report["new"] == 1
    assert report["errors"][0]["error"] == "the .bad reader failed: it gave int, not Block"


def test_storage_backend_registry(toy: ToyPlugin, mem_home: Path) -> None:
    backend = storage_backend("toy-memory")("somewhere", profile="alice")
    assert isinstance(backend, InMemoryBackend)
    assert backend.options == {"profile": "alice"}
    sqlite = storage_backend("sqlite")(mem_home / "mem.db", embedder="hash-64", dim=64)
    assert isinstance(sqlite, SQLiteBackend) and isinstance(sqlite, StorageBackend)
    sqlite.close()
    with pytest.raises(UsageError) as err:
        storage_backend("nope")
    # Other test modules may have registered more (the storage suite's in-memory double).
    assert str(err.value).startswith("Unknown storage backend 'nope': use one of ")
    assert {"sqlite", "toy-memory"} <= set(str(err.value)[43:].rstrip(".").split(", "))
    assert "toy-memory" in known_names("storage backend")


def test_a_malformed_plugin_is_refused() -> None:
    class Typo:
        @hookimpl
        def register_embedder(self, register: Register) -> None:  # no such hook
            register("x", HashingEmbedder)

    plugin = Typo()
    with pytest.raises(PluginError, match="Not a valid mem plugin"):
        register_plugin(plugin)
    unregister_plugin(plugin)  # nothing left registered: a no-op


# ---------------------------------------------------------------- installed plugins
PLUGIN_SOURCE = """
from pathlib import Path
import os

from memory.plugins import hookimpl

Path(os.environ["TOY_MARKER"]).write_text("imported")


class Fixed:
    def __init__(self, chat):
        self.chat = chat

    def stream(self, messages):
        yield "installed plugin says hi"


@hookimpl
def register_chat_models(register):
    register("installed", Fixed)
"""


def _install(site: Path) -> None:
    """A distribution ``mem-toy`` with a ``[mem]`` entry point, as pip leaves it."""
    (site / "mem_toy_plugin.py").write_text(PLUGIN_SOURCE)
    info = site / "mem_toy-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mem-toy\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mem]\ntoy = mem_toy_plugin\n")


def _mem(site: Path, marker: Path, mem_home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=f"{site}{os.pathsep}{ROOT}", MEM_HOME=str(mem_home))
    env["TOY_MARKER"] = str(marker)
    return subprocess.run(
        [sys.executable, *args], env=env, capture_output=True, text=True, timeout=120
    )


def _modules_after(
    site: Path, marker: Path, mem_home: Path, *args: str
) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``mem ARGS`` in a fresh interpreter; the modules it had imported by the end
    (``-X importtime`` misses those imported with importlib.import_module)."""
    script = (
        "import sys\nfrom cli.main import main\n"
        f"sys.argv = ['mem', *{list(args)!r}]\n"
        "try:\n    main()\nfinally:\n    print('MODULES', *sorted(sys.modules), file=sys.stderr)\n"
    )
    done = _mem(site, marker, mem_home, "-c", script)
    line = next(x for x in done.stderr.splitlines() if x.startswith("MODULES "))
    return done, set(line.split()[1:])


def test_an_installed_plugin_is_loaded_from_its_entry_point(tmp_path: Path, mem_home: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    _install(site)
    marker = tmp_path / "imported"

    helped, imported = _modules_after(site, marker, mem_home, "--help")
    assert helped.returncode == 0, helped.stderr
    assert not {"pluggy", "importlib.metadata", "memory.plugins"} & imported
    assert not marker.exists()

    remembered = _mem(site, marker, mem_home, "-m", "cli.main", "remember", "My dog is Rex")
    assert remembered.returncode == 0, remembered.stderr
    searched, imported = _modules_after(site, marker, mem_home, "search", "dog")
    assert searched.returncode == 0, searched.stderr
    assert "memory.default_plugins" in imported  # the built-in embedder came from it
    assert not {"pluggy", "importlib.metadata"} & imported  # ...with no entry points read
    assert not marker.exists()

    asked = _mem(site, marker, mem_home, "-m", "cli.main", "ask", "--model", "installed/x", "hi")
    assert asked.returncode == 0, asked.stderr
    assert asked.stdout == "installed plugin says hi\n"
    assert marker.exists()

    version = _mem(site, marker, mem_home, "-m", "cli.main", "--version", "-v")
    assert "plugins    toy (mem-toy 0.1)" in version.stdout.splitlines()


def test_the_readme_plugin_works_as_written(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## Plugins\n", 1)[1]
    source = section.split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "mem_readme_toy.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    import mem_readme_toy  # type: ignore[import-not-found]

    register_plugin(mem_readme_toy)
    try:
        monkeypatch.setenv("MEM_EMBEDDER", "letters-32")
        assert cli("ask", "--model", "toy", "hi").stdout == "Always the same answer.\n"
        (tmp_path / "app.log").write_text("disk full on /var at 03:12\n")
        assert cli.json("add", str(tmp_path / "app.log"))["new"] == 1
        assert "disk full" in cli.json("search", "disk full")[0]["content"]
        assert cli.json("stats")["embedder"] == "letters-32"
    finally:
        unregister_plugin(mem_readme_toy)


def test_a_broken_installed_plugin_is_a_one_line_error(tmp_path: Path, mem_home: Path) -> None:
    site = tmp_path / "site"
    info = site / "mem_broken-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mem-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[mem]\nbroken = mem_broken_missing_module\n")
    marker = tmp_path / "unused"
    # Built-in names never read entry points, so the broken plugin costs nothing there...
    listed = _mem(site, marker, mem_home, "-m", "cli.main", "list")
    assert listed.returncode == 0, listed.stderr
    # ...and a name that is not mem's own says which plugin failed and what to do.
    asked = _mem(site, marker, mem_home, "-m", "cli.main", "ask", "--model", "nope/x", "hi")
    assert asked.returncode != 0
    assert asked.stderr.startswith("Error: A mem plugin failed to load (ModuleNotFoundError: ")
    assert asked.stderr.rstrip().endswith(
        "uninstall or update it (`pip list` shows the installed packages)."
    )
    assert len(asked.stderr.strip().splitlines()) == 1
