"""Plugins: four registries filled through pluggy hooks (see :mod:`memory.hookspecs`).

mem's own embedders, chat-model routes, document readers and the ``sqlite``
storage backend are a default plugin (:mod:`memory.default_plugins`) registered
through the same hooks as anyone else's. Nothing is loaded before a registry is
first asked. The ``mem`` entry-point group (installed plugins: pluggy and
``importlib.metadata``, about 25 ms) is read only for a name that is not a
built-in one, or when the names are listed; until then (or a
:func:`register_plugin`) the built-ins' hook functions are called directly,
without pluggy, which gives the same answer because no installed plugin can
change a built-in name. So ``mem --help`` imports none of this, and ``mem
search`` with a built-in embedder no pluggy.

When two plugins register one name: a plugin registered in Python
(:func:`register_plugin`, for tests and programs) wins over the built-ins, and
the built-ins win over installed plugins, so an installed package can add names
but never change what a built-in name (stored in a database) means.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from memory.errors import PluginError, UsageError

if TYPE_CHECKING:
    import pluggy

    from memory.hookspecs import hookimpl

__all__ = [
    "HOOKS",
    "PluginError",
    "chat_model_factory",
    "document_reader",
    "embedder_factory",
    "hookimpl",
    "known_names",
    "plugin_names",
    "register_plugin",
    "storage_backend",
    "unregister_plugin",
]

ENTRY_POINT_GROUP = "mem"
# Imported by name, as llm does: the default plugin sits above every module it
# registers (embed, llm, store, documents), which sit above this registry.
DEFAULT_PLUGIN = "memory.default_plugins"
HOOKS = {
    "embedder": "register_embedders",
    "chat model": "register_chat_models",
    "storage backend": "register_storage_backends",
    "document reader": "register_document_readers",
}

Factory = Callable[..., Any]


_lock = threading.RLock()
_pm: pluggy.PluginManager | None = None
_entry_points_loaded = False
_load_error: PluginError | None = None
_explicit: list[object] = []  # registered with register_plugin, oldest first
_cache: dict[str, dict[str, Factory]] = {}
_builtin: dict[str, set[str]] = {}  # per kind: the names the built-ins still answer
_origin: dict[str, dict[str, str]] = {}  # per kind: name -> the plugin that answers it


def __getattr__(name: str) -> Any:
    """``from memory.plugins import hookimpl``: pluggy is imported only then."""
    if name == "hookimpl":
        from memory.hookspecs import hookimpl

        return hookimpl
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _manager() -> pluggy.PluginManager:
    """The plugin manager with the built-ins registered (built once, no entry points)."""
    global _pm
    with _lock:
        if _pm is None:
            import pluggy

            from memory import hookspecs

            default_plugins = importlib.import_module(DEFAULT_PLUGIN)

            for hook in HOOKS.values():  # plain functions until pluggy is needed
                hookspecs.hookimpl(getattr(default_plugins, hook))
            pm = pluggy.PluginManager("mem")
            pm.add_hookspecs(hookspecs)
            pm.register(default_plugins, name="mem-builtins")
            _pm = pm
            _cache.clear()
        return _pm


def _load_entry_points() -> None:
    """Register the installed plugins (the ``mem`` entry-point group), once."""
    global _entry_points_loaded, _load_error
    with _lock:
        if _load_error is not None:  # every later ask fails the same way
            raise _load_error
        if _entry_points_loaded:
            return
        _entry_points_loaded = True
        pm = _manager()
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
            pm.check_pending()
        except Exception as err:
            _load_error = PluginError(
                f"A mem plugin failed to load ({type(err).__name__}: {err}): uninstall or"
                " update it (`pip list` shows the installed packages)."
            )
            raise _load_error from err
        finally:
            _cache.clear()


def register_plugin(plugin: object, name: str | None = None) -> None:
    """Register ``plugin`` (a module or object with ``@hookimpl`` functions); its
    names win over the built-ins and installed plugins until it is unregistered."""
    import pluggy

    _load_entry_points()  # so the order never depends on when they are read
    with _lock:
        pm = _manager()
        try:
            pm.register(plugin, name=name)
            pm.check_pending()
        except pluggy.PluginValidationError as err:
            if pm.is_registered(plugin):
                pm.unregister(plugin)
            raise PluginError(f"Not a valid mem plugin: {err}") from err
        except ValueError as err:  # registered twice
            raise PluginError(str(err)) from err
        _explicit.append(plugin)
        _cache.clear()


def unregister_plugin(plugin: object) -> None:
    """Undo :func:`register_plugin` (nothing happens for a plugin not registered)."""
    with _lock:
        if any(p is plugin for p in _explicit):
            _explicit.remove(plugin)
            _manager().unregister(plugin)
            _cache.clear()


def plugin_names() -> list[str]:
    """The registered plugins but the built-ins, installed ones with their package
    and version (``toy (mem-toy 0.1)``); reads the entry points."""
    _load_entry_points()
    pm = _manager()
    dists = {id(plugin): dist for plugin, dist in pm.list_plugin_distinfo()}
    names = []
    for name, plugin in pm.list_name_plugin():
        if name == "mem-builtins" or plugin is None:
            continue
        dist = dists.get(id(plugin))
        names.append(f"{name} ({dist.project_name} {dist.version})" if dist else name)
    return sorted(names)


def _registry(kind: str) -> dict[str, Factory]:
    """Name -> factory for one kind, from every registered plugin (cached until a
    plugin comes or goes); see the module docstring for who wins a name."""
    with _lock:
        cached = _cache.get(kind)
        if cached is not None:
            return cached
        if _pm is None:
            return _builtins_only(kind)
        pm = _pm
        installed = {id(plugin) for plugin, _ in pm.list_plugin_distinfo()}
        explicit = {id(plugin): rank for rank, plugin in enumerate(_explicit)}

        def rank(plugin: object) -> tuple[int, int]:
            if id(plugin) in explicit:
                return 2, explicit[id(plugin)]
            return (0, 0) if id(plugin) in installed else (1, 0)

        found: dict[str, Factory] = {}
        builtin: set[str] = set()
        origins: dict[str, str] = {}
        current: list[object] = [None]

        def register(name: str, factory: Factory) -> None:
            if not isinstance(name, str) or not name or not callable(factory):
                raise PluginError(
                    f"A {kind} plugin registered {name!r}: give a name and a factory."
                )
            found[name] = factory
            origins[name] = pm.get_name(current[0]) or repr(current[0])
            if current[0] is builtins:
                builtin.add(name)
            else:
                builtin.discard(name)

        builtins = pm.get_plugin("mem-builtins")
        impls = getattr(pm.hook, HOOKS[kind]).get_hookimpls()
        for impl in sorted(impls, key=lambda impl: rank(impl.plugin)):
            current[0] = impl.plugin
            impl.function(register=register)  # later ranks overwrite earlier ones
        _cache[kind], _builtin[kind], _origin[kind] = found, builtin, origins
        return found


def _builtins_only(kind: str) -> dict[str, Factory]:
    """The registry while only the built-ins are registered: their hook functions,
    called as plain functions (no plugin manager, no pluggy import)."""
    default_plugins = importlib.import_module(DEFAULT_PLUGIN)
    found: dict[str, Factory] = {}

    def register(name: str, factory: Factory) -> None:
        found[name] = factory

    getattr(default_plugins, HOOKS[kind])(register=register)
    _cache[kind], _builtin[kind] = found, set(found)
    _origin[kind] = dict.fromkeys(found, "mem-builtins")
    return found


def lookup(kind: str, name: str, *, installed: bool = True) -> Factory | None:
    """The factory registered for ``name``; installed plugins are read on a miss
    (unless not ``installed``: a caller with a built-in family to try first)."""
    factory = _registry(kind).get(name)
    if factory is None and installed and (_load_error or not _entry_points_loaded):
        _load_entry_points()
        factory = _registry(kind).get(name)
    return factory


def known_names(kind: str) -> list[str]:
    """Every name registered for ``kind``, installed plugins' included, sorted."""
    _load_entry_points()
    return sorted(_registry(kind))


def is_builtin(kind: str, name: str) -> bool:
    """Whether ``name`` is answered by mem's own default plugin (no plugin took it)."""
    with _lock:
        _registry(kind)
        return name in _builtin[kind]


def origin(kind: str, name: str) -> str | None:
    """The name of the plugin that answers ``name`` (``mem-builtins`` for mem's own)."""
    with _lock:
        _registry(kind)
        return _origin[kind].get(name)


# -- the four registries -------------------------------------------------------------


def embedder_factory(name: str) -> Factory | None:
    """``factory()`` for the embedder registered as ``name``, or None."""
    return lookup("embedder", name)


def chat_model_factory(model: str, *, installed: bool = True) -> Factory | None:
    """``factory(chat)`` for the prefix of ``model`` (``toy`` for ``toy/x`` and
    ``toy``), or None: mem's own routing then decides (litellm knows many more)."""
    return lookup("chat model", model.partition("/")[0].lower(), installed=installed)


def document_reader(suffix: str) -> Factory | None:
    """``reader(path)`` for files ending in ``suffix`` (``.md``), or None."""
    return lookup("document reader", suffix.lower()) if suffix else None


def storage_backend(name: str) -> Factory:
    """``factory(path, **options)`` for the storage backend ``name`` (``sqlite``)."""
    factory = lookup("storage backend", name)
    if factory is None:
        names = ", ".join(known_names("storage backend"))
        raise UsageError(f"Unknown storage backend {name!r}: use one of {names}.")
    return factory
