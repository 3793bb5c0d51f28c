"""Read SGLang's /metrics text into prometheus_client families, fast.

`prometheus_client.parser.text_string_to_metric_families` walks label strings a character at a time: on a full
SGLang page (167 families, ~1,000 samples) it costs ~90 ms of event-loop time per scrape. SGLang writes its
page with prometheus_client's own `generate_latest`, so every line has one regular shape; `parse` reads those
lines with two compiled regexes and reproduces the library parser's family grouping (same names, types, help,
samples). Any line outside that shape (quoted UTF-8 names, timestamps, `__name__` labels, odd spacing) makes it
hand the whole text to the library parser, so the result is always what the library would return.

`split_page` is what a scrape uses: it checks that a page is laid out the way prometheus_client writes one,
keeps the text of the families to pass on as it is and parses only the families asked for. `parse` is then
only needed for pages it refuses.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from itertools import islice, repeat
from operator import itemgetter

from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_CHARS = r'[^"\\\n]*(?:\\.[^"\\\n]*)*'  # "unrolled loop": one char class per run, not one alternation per char
_QUOTED = rf'"{_CHARS}"'
_PAIR = rf"[a-zA-Z_][a-zA-Z0-9_]*={_QUOTED}"
_SAMPLE_RE = re.compile(rf"({_NAME})(?:\{{((?:{_PAIR}(?:,{_PAIR})*,?)?)\}})? ([^ \t]+)")
_PAIR_RE = re.compile(rf'([a-zA-Z_][a-zA-Z0-9_]*)="({_CHARS})"')
_WS = r"[ \t\r\x0b\x0c]+"  # the library splits HELP/TYPE lines on string.whitespace
_META_RE = re.compile(rf"#{_WS}(HELP|TYPE){_WS}({_NAME})(?:{_WS}(.*))?")
# The library's unescaping: only these sequences are replaced; any other backslash stays as written.
_ESCAPES = {"\\\\": "\\", "\\n": "\n", '\\"': '"'}
_LABEL_ESCAPE_RE = re.compile(r'\\[\\n"]')
_HELP_ESCAPE_RE = re.compile(r"\\[\\n]")
_SUFFIXES = {"counter": ("",), "gauge": ("",), "summary": ("_count", "_sum", ""),
             "histogram": ("_count", "_sum", "_bucket")}
_LAYOUT_SUFFIXES = {**_SUFFIXES, "untyped": ("",)}
_NAME_RE = re.compile(_NAME)
_SERIES_RE = re.compile(rf"{_NAME}(?:\{{(?:{_PAIR}(?:,{_PAIR})*,?)?\}})?")  # a sample line without its value
# Sample values, one a line: the decimal and special forms float() and Prometheus both read.
_NUMBER = r"[-+]?(?:[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?|Inf|NaN)"
_VALUES_RE = re.compile(rf"{_NUMBER}(?:\n{_NUMBER})*")


# `split_page` remembers what it has checked or read: a page repeats the same series scrape after scrape and only
# the values change, and checking or reading the labels was most of its cost. `_LABELS` maps label text to the
# labels read from it; those dicts are shared by every sample with the same labels, so nothing may change a
# Sample's labels in place (`metrics_translate` only reads them). Each is emptied when it grows too big.
_SERIES: dict[str, str] = {}  # sample line without its value -> `_series_key`
_SERIES_LOCK = threading.Lock()  # a scrape runs in a worker thread; a lookup must not meet another's clear()
_LABELS: dict[str, dict[str, str]] = {}
_CACHE_MAX = 8192


def clear_caches() -> None:
    """Forget what `split_page` has checked and read, as on a fresh start (benchmarks use it)."""
    with _SERIES_LOCK:
        _SERIES.clear()
    _LABELS.clear()


class Unusual(Exception):
    """Text the fast paths do not read exactly like the library would: `parse` then hands it to the library,
    `split_page` raises it to its caller."""


def parse(text: str) -> list[Metric]:
    """Families in page order, as `text_string_to_metric_families` returns them. Raises ValueError if invalid."""
    try:
        return list(_FastReader().read(text))
    except Unusual:
        return list(text_string_to_metric_families(text))


class _FastReader:
    """The library parser's state machine (`text_fd_to_metric_families`), with regex line parsing."""

    def __init__(self) -> None:
        self.name, self.doc, self.typ = "", "", "untyped"
        self.samples: list[Sample] = []
        self.allowed: tuple[str, ...] = ()

    def read(self, text: str) -> Iterator[Metric]:
        for raw in text.split("\n"):
            line = raw.strip()
            if not line:
                continue
            if line[0] == "#":
                yield from self._meta(line)
                continue
            sample = _sample(line)
            if sample.name in self.allowed:
                self.samples.append(sample)
                continue
            # Like the library: a sample outside the current family is a one-sample untyped family.
            yield from self._flush()
            self.name, self.doc, self.typ, self.allowed = "", "", "untyped", ()
            yield _family(sample.name, "", "untyped", [sample])
        yield from self._flush()

    def _meta(self, line: str) -> Iterator[Metric]:
        match = _META_RE.fullmatch(line)
        if match is None:
            if line.split(None, 2)[1:2] in (["HELP"], ["TYPE"]):
                raise Unusual(line)
            return  # a plain comment
        kind, name, rest = match.groups()
        if '"' in line:
            raise Unusual(line)  # the library splits HELP/TYPE lines quote-aware
        if name != self.name:
            yield from self._flush()
            self.name, self.doc, self.samples = name, "", []
            self.typ, self.allowed = "untyped", (name,)
        if kind == "HELP":
            self.doc = _HELP_ESCAPE_RE.sub(_unescape, rest) if rest else ""
        elif rest is None or len(rest.split()) != 1:
            raise Unusual(line)
        else:
            self.typ = rest
            self.allowed = tuple(name + suffix for suffix in _SUFFIXES.get(rest, ("",)))

    def _flush(self) -> Iterator[Metric]:
        if self.name:
            yield _family(self.name, self.doc, self.typ, self.samples)
        self.name = ""


def _sample(line: str) -> Sample:
    match = _SAMPLE_RE.fullmatch(line)
    if match is None:
        raise Unusual(line)
    name, label_text, value = match.groups()
    labels: dict[str, str] = {}
    if not label_text:
        pass
    elif "\\" not in label_text:  # the usual case: nothing to unescape, so build the dict in C
        labels = dict(_PAIR_RE.findall(label_text))
    else:
        for key, raw in _PAIR_RE.findall(label_text):
            labels[key] = _LABEL_ESCAPE_RE.sub(_unescape, raw) if "\\" in raw else raw
    if "__name__" in labels:
        raise Unusual(line)
    if "_" in value:
        raise Unusual(line)  # float() accepts "1_0"; the library rejects it, so let it raise
    try:
        return Sample(name, labels, float(value))
    except ValueError:
        raise Unusual(line) from None


def _unescape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group(0)]


def _family(name: str, doc: str, typ: str, samples: list[Sample]) -> Metric:
    # The library's munging into the OpenMetrics shape: a counter family is named without `_total`.
    if typ == "counter":
        if name.endswith("_total"):
            name = name[:-6]
        else:
            samples = [Sample(s.name + "_total", *s[1:]) for s in samples]
    metric = Metric(name, doc, typ)
    metric.samples = samples
    return metric


@dataclass
class Page:
    passthrough: str  # the kept families' text, exactly as SGLang wrote it
    families: list[Metric] = field(default_factory=list)  # the wanted families, as `parse` returns them


def split_page(text: str, keep_prefix: str, wanted: Collection[str]) -> Page:
    """The text of the families named `keep_prefix*`, verbatim, and the families in `wanted` (names as written
    on the page, so counters with `_total`), parsed.

    Raises `Unusual` unless the page is laid out as `generate_latest` writes it: `# HELP`, `# TYPE`, then only
    that family's samples, each family once, and every kept sample line valid with no series (sample name
    and label set) twice. So the kept text, pasted into a page of other families, adds no family and no
    series twice and parses. Checked family by family and with set operations, not line by line: what a line
    holds besides its value is checked once and remembered, as it recurs scrape after scrape.
    """
    chunks = text.split("\n# HELP ")  # one family each, without its first line's `# HELP `
    if not chunks[0].startswith("# HELP ") or "__name__" in text:  # that label would rename a sample
        raise Unusual("not laid out as prometheus_client writes a page")
    chunks[0] = chunks[0][len("# HELP "):]
    chunks[-1] = chunks[-1].rstrip("\n")  # the same chunk as above when the page has one family
    seen: set[str] = set()
    kept: list[str] = []
    kept_samples: list[str] = []
    parsed: list[list[str]] = []
    for chunk in chunks:
        lines = chunk.split("\n")
        name, reported = _check_family(lines)
        if reported in seen:
            raise Unusual(f"family {reported} written in more than one piece")
        seen.add(reported)
        if name.startswith(keep_prefix):
            kept.append(chunk)
            kept_samples += lines[2:]
        if name in wanted:
            parsed.append(lines)
    _check_samples(kept_samples)
    return Page("".join(f"# HELP {chunk}\n" for chunk in kept), [_read_family(lines) for lines in parsed])


def _check_family(lines: list[str]) -> tuple[str, str]:
    """(name as written, name as the library reports it) of one family's lines (`# HELP ` cut off the first)."""
    name = lines[0].partition(" ")[0]
    typ = lines[1].removeprefix(f"# TYPE {name} ") if len(lines) > 1 else ""
    prefixes = _sample_prefixes(name, typ)
    if not prefixes:
        raise Unusual(f"no TYPE line right after HELP {name}")
    if '"' in lines[0]:
        raise Unusual(f"quotes in HELP {name}")  # the library splits HELP lines quote-aware
    if not all(map(str.startswith, islice(lines, 2, None), repeat(prefixes))):
        raise Unusual(f"a line in family {name} is not one of its samples")
    return name, name[:-6] if typ == "counter" and name.endswith("_total") else name


@functools.lru_cache(maxsize=2048)  # the same few hundred (name, type) pairs, scrape after scrape
def _sample_prefixes(name: str, typ: str) -> tuple[str, ...]:
    """How each sample line of this family starts (an allowed name, then labels or the value); () if invalid."""
    if typ not in _LAYOUT_SUFFIXES or _NAME_RE.fullmatch(name) is None:
        return ()
    return tuple(name + suffix + end for suffix in _LAYOUT_SUFFIXES[typ] for end in "{ ")


def _check_samples(lines: list[str]) -> None:
    parts = list(map(str.rpartition, lines, repeat(" ")))  # (name and labels, " ", value)
    if lines and _VALUES_RE.fullmatch("\n".join(map(itemgetter(2), parts))) is None:
        raise Unusual("a sample value is not a number")
    series = list(map(itemgetter(0), parts))
    with _SERIES_LOCK:
        keys = list(map(_SERIES.get, series))
        if None in keys:  # lines not seen on an earlier page
            new = {text for text, key in zip(series, keys, strict=True) if key is None}
            if len(_SERIES) + len(new) > _CACHE_MAX:
                _SERIES.clear()
                new = set(series)
            _SERIES.update((text, _series_key(text)) for text in new)
            keys = list(map(_SERIES.__getitem__, series))
    if len(set(keys)) != len(series):
        raise Unusual("a series appears twice")


def _series_key(series: str) -> str:
    """A sample line without its value, checked, as a key equal for equal labels in any order or escaping."""
    if _SERIES_RE.fullmatch(series) is None:
        raise Unusual(f"not valid exposition: {series}")
    name, _, label_text = series.partition("{")
    labels = {k: _LABEL_ESCAPE_RE.sub(_unescape, v) if "\\" in v else v for k, v in _PAIR_RE.findall(label_text)}
    return f"{name}\n{sorted(labels.items())!r}"


def _read_family(lines: list[str]) -> Metric:
    """One family that passed `_check_family`, read with string splits; odd lines go through `_sample`."""
    name, _, doc = lines[0].partition(" ")
    # As the library trims it: the line end of any Unicode whitespace, the split off of `string.whitespace`.
    doc = _HELP_ESCAPE_RE.sub(_unescape, doc.lstrip(" \t\r\x0b\x0c").rstrip())
    return _family(name, doc, lines[1].rpartition(" ")[2], [_split_sample(line) for line in lines[2:]])


def _split_sample(line: str) -> Sample:
    head, _, value = line.rpartition(" ")
    name, _, label_text = head.partition("{")
    labels = _LABELS.get(label_text)
    if labels is None:  # labels not seen before: the regex path checks and reads them
        sample = _sample(line)
        if len(_LABELS) >= _CACHE_MAX:
            _LABELS.clear()
        _LABELS[label_text] = sample.labels
        return sample
    if "_" in value:
        raise Unusual(line)  # float() takes "1_0"; the library does not
    try:
        return Sample(name, labels, float(value))
    except ValueError:
        raise Unusual(line) from None
