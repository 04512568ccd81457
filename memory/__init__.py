"""mem's memory engine: a Python API of its own (the CLI is one client).

from memory import MemoryStore
with MemoryStore.open("mem.db") as store:
    store.remember("My dog is called Rex")
    hits = store.search("dog name")
"""

from .errors import MemError
from .models import Event, Hit, Memory, Message
from .store import MemoryStore

__all__ = ["Event", "Hit", "MemError", "Memory", "MemoryStore", "Message"]
__version__ = "0.1.0"
