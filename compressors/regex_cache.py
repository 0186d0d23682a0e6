"""A larger compiled-pattern cache for a library that calls `re.sub(pattern_string, ...)` with many
distinct patterns. pysbd builds ~600 patterns on NQ-20 text (a few per abbreviation it meets), more
than the 512 that `re` keeps, so once the cache is full it recompiles its rules on every document
(about a third of its time on ~10k-token prompts). `cached_re` stands in for the `re` module inside
such a library: the same functions over the same patterns and flags, compiled once and kept in an LRU
cache of its own, so neither `re`'s process-wide cache nor its size (a CPython private) is touched."""

from __future__ import annotations

import functools
import re
import sys
import types

MAX_PATTERNS = 8192  # bounded: a pattern built from input text would otherwise grow it forever


@functools.lru_cache(maxsize=MAX_PATTERNS)
def _compiled(pattern, flags: int) -> re.Pattern:
    return re.compile(pattern, flags)


def _sub(pattern, repl, string, count=0, flags=0):
    return _compiled(pattern, flags).sub(repl, string, count)


def _subn(pattern, repl, string, count=0, flags=0):
    return _compiled(pattern, flags).subn(repl, string, count)


def _split(pattern, string, maxsplit=0, flags=0):
    return _compiled(pattern, flags).split(string, maxsplit)


def _findall(pattern, string, flags=0):
    return _compiled(pattern, flags).findall(string)


def _finditer(pattern, string, flags=0):
    return _compiled(pattern, flags).finditer(string)


def _search(pattern, string, flags=0):
    return _compiled(pattern, flags).search(string)


def _match(pattern, string, flags=0):
    return _compiled(pattern, flags).match(string)


def _fullmatch(pattern, string, flags=0):
    return _compiled(pattern, flags).fullmatch(string)


def _compile(pattern, flags=0):
    return _compiled(pattern, flags)


cached_re = types.ModuleType("re", "the re module with a larger compiled-pattern cache (compressors.regex_cache)")
cached_re.__dict__.update({k: v for k, v in vars(re).items() if not k.startswith("__")})
cached_re.__dict__.update(
    sub=_sub,
    subn=_subn,
    split=_split,
    findall=_findall,
    finditer=_finditer,
    search=_search,
    match=_match,
    fullmatch=_fullmatch,
    compile=_compile,
)


def use_in(package: str) -> None:
    """Give every loaded module of `package` that imported `re` the cached one instead."""
    for name, module in list(sys.modules.items()):
        if (name == package or name.startswith(package + ".")) and getattr(module, "re", None) is re:
            module.re = cached_re
