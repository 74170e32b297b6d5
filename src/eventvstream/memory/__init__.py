"""Memory: the persistent event bank (SQLite source of truth + FAISS caches), consolidation
and retrieval."""

from eventvstream.memory.bank import Hit, MemoryBank, Stored
from eventvstream.memory.rows import EventRow
from eventvstream.memory.schema import MemoryCorruptError

__all__ = ["EventRow", "Hit", "MemoryBank", "MemoryCorruptError", "Stored"]
