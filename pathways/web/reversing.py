"""reverse() for the URLs a page repeats on every row (task actions, patient links), remembered per process.

Django's reverse() walks the URL resolver on every call, about 25 µs: My work's rows made 86 calls a page, a
tenth of its time. The same name and arguments always give the same URL for a given URL configuration and
script prefix, so both are part of the key; a changed setting empties the cache (selectors.kept.process_cache).
"""

from __future__ import annotations

from typing import Any

from django.urls import get_script_prefix, get_urlconf, reverse

from pathways.selectors.kept import process_cache

# Row URLs of the pages users keep open (a few per task); least recently used out first.
MAX_URLS = 20000

_urls = process_cache(MAX_URLS, "reversed urls")


def reverse_kept(name: str, *args: Any) -> str:
    """reverse(name, args=args), remembered. Raises NoReverseMatch as reverse() does (and remembers nothing)."""
    key = (get_urlconf(), get_script_prefix(), name, args)
    url = _urls.get(key)
    if url is None:
        url = reverse(name, args=args)
        _urls.put(key, url)
    return url
