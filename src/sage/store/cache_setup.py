"""Building the process's cache: which backend, with which TTLs. Apart from `cache.py` so the
backends can import the cache's types without an import cycle."""

from __future__ import annotations

from collections.abc import Callable

from sage.settings import Settings
from sage.store.cache import TTL, Cache, CacheBackend
from sage.store.cache_memory import MemoryBackend
from sage.store.cache_valkey import ValkeyBackend


def create_backend(url: str | None, *, timeout: float = 1.0) -> CacheBackend:
    """Valkey when a URL is given, else the in-process backend (embedded default)."""
    if url is None:
        return MemoryBackend()
    return ValkeyBackend(url, timeout=timeout)


def build_cache(settings: Settings, *, on_error: Callable[[], None] | None = None) -> Cache:
    """The process's cache: Valkey at VALKEY_URL (else in-process) with the configured TTLs.
    `on_error` is told of every failed call (the ValkeyErrors metric)."""
    backend = create_backend(settings.valkey_url, timeout=settings.valkey_timeout_seconds)
    return Cache(backend, ttl=TTL.from_settings(settings), on_error=on_error)
