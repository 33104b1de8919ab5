"""A small metrics registry: counters, gauges and histograms with labels, rendered in the
Prometheus text exposition format (version 0.0.4).

Written here rather than taken from prometheus_client because exbus needs only these
three types, one registry per service in a process (``exbus up`` runs all three), and
the values themselves for the NATS service stats; the whole thing is one event loop, so
no locks.

    registry = Registry()
    commands = registry.counter("exbus_commands_total", "Commands by outcome.", ("venue", "outcome"))
    commands.labels("binance", "accepted").inc()
    text = registry.exposition()
"""

from __future__ import annotations

import math
from bisect import bisect_left
from typing import Callable, Iterator

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Seconds; the upper bounds of a histogram's buckets (+Inf is implied)."""


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it (integers without a fraction)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def escape_label(value: str) -> str:
    """A label value escaped for the text format (backslash, quote, newline)."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _labels_text(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{escape_label(v)}"' for n, v in zip(names, values)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class CounterChild:
    """One labelled series of a counter: only goes up."""

    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        self.value += amount


class GaugeChild:
    """One labelled series of a gauge: set to the current value, or computed when read."""

    __slots__ = ("_value", "_read")

    def __init__(self) -> None:
        self._value = 0.0
        self._read: Callable[[], float] | None = None

    @property
    def value(self) -> float:
        return self._read() if self._read is not None else self._value

    def set(self, value: float) -> None:
        self._value, self._read = float(value), None

    def set_function(self, read: Callable[[], float]) -> None:
        """Compute the value each time it is read (a scrape), e.g. from a decaying state."""
        self._read = read

    def inc(self, amount: float = 1.0) -> None:
        self.set(self.value + amount)

    def dec(self, amount: float = 1.0) -> None:
        self.set(self.value - amount)


class HistogramChild:
    """One labelled series of a histogram: observations counted per bucket, plus sum."""

    __slots__ = ("bounds", "counts", "sum", "count")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)  # the last one: above every bound
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations <= bound) for every bucket, +Inf last."""
        out, total = [], 0
        for bound, n in zip((*self.bounds, math.inf), self.counts):
            total += n
            out.append((bound, total))
        return out


Child = CounterChild | GaugeChild | HistogramChild


class Family:
    """A metric with a name, help text, type and label names; its series are children."""

    kind = ""

    def __init__(self, name: str, help: str, labelnames: tuple[str, ...] = ()) -> None:
        self.name = name
        self.help = help
        self.labelnames = tuple(labelnames)
        self.children: dict[tuple[str, ...], Child] = {}

    def _new_child(self) -> Child:
        raise NotImplementedError

    def labels(self, *values: str, **named: str) -> Child:
        """The series for these label values (positional in label order, or by name)."""
        key = values if not named else tuple(named[n] for n in self.labelnames)
        child = self.children.get(key)
        if child is None:
            if len(key) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, got {key}")
            child = self.children[key] = self._new_child()
        return child

    def samples(self) -> Iterator[tuple[str, dict[str, str], float]]:
        """(sample name, labels, value) for every series."""
        for key, child in sorted(self.children.items()):
            labels = dict(zip(self.labelnames, key))
            yield from self._child_samples(labels, child)

    def _child_samples(self, labels: dict[str, str], child: Child) -> Iterator[tuple[str, dict[str, str], float]]:
        yield self.name, labels, child.value  # type: ignore[union-attr]

    def exposition(self) -> str:
        lines = [f"# HELP {self.name} {_escape_help(self.help)}", f"# TYPE {self.name} {self.kind}"]
        for name, labels, value in self.samples():
            extra = ""
            if "le" in labels and name.endswith("_bucket"):
                le = labels.pop("le")
                extra = f'le="{le}"'
            lines.append(f"{name}{_labels_text(tuple(labels), tuple(labels.values()), extra)} {format_value(value)}")
        return "\n".join(lines) + "\n"


class Counter(Family):
    """Counts events; only goes up (since the process started)."""

    kind = "counter"

    def _new_child(self) -> CounterChild:
        return CounterChild()

    def inc(self, amount: float = 1.0) -> None:
        """Increment the unlabelled series."""
        self.labels().inc(amount)  # type: ignore[union-attr]


class Gauge(Family):
    """A value that goes up and down."""

    kind = "gauge"

    def _new_child(self) -> GaugeChild:
        return GaugeChild()

    def set(self, value: float) -> None:
        """Set the unlabelled series."""
        self.labels().set(value)  # type: ignore[union-attr]


class Histogram(Family):
    """Observations (durations) counted in cumulative buckets, with their sum and count."""

    kind = "histogram"

    def __init__(self, name: str, help: str, labelnames: tuple[str, ...] = (),
                 buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help, labelnames)
        self.buckets = tuple(sorted(buckets))

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.buckets)

    def observe(self, value: float) -> None:
        """Observe on the unlabelled series."""
        self.labels().observe(value)  # type: ignore[union-attr]

    def _child_samples(self, labels: dict[str, str], child: Child) -> Iterator[tuple[str, dict[str, str], float]]:
        assert isinstance(child, HistogramChild)
        for bound, total in child.cumulative():
            yield f"{self.name}_bucket", {**labels, "le": format_value(bound)}, total
        yield f"{self.name}_sum", labels, child.sum
        yield f"{self.name}_count", labels, child.count


class Registry:
    """The metrics of one service; ``counter``/``gauge``/``histogram`` get or create a family."""

    def __init__(self) -> None:
        self.families: dict[str, Family] = {}

    def _family(self, cls: type[Family], name: str, help: str, labelnames: tuple[str, ...], **kw: object) -> Family:
        family = self.families.get(name)
        if family is None:
            family = self.families[name] = cls(name, help, tuple(labelnames), **kw)  # type: ignore[arg-type]
        elif type(family) is not cls or family.labelnames != tuple(labelnames):
            raise ValueError(f"metric {name} already registered as {family.kind} with labels {family.labelnames}")
        return family

    def counter(self, name: str, help: str, labelnames: tuple[str, ...] = ()) -> Counter:
        return self._family(Counter, name, help, labelnames)  # type: ignore[return-value]

    def gauge(self, name: str, help: str, labelnames: tuple[str, ...] = ()) -> Gauge:
        return self._family(Gauge, name, help, labelnames)  # type: ignore[return-value]

    def histogram(self, name: str, help: str, labelnames: tuple[str, ...] = (),
                  buckets: tuple[float, ...] = DEFAULT_BUCKETS) -> Histogram:
        return self._family(Histogram, name, help, labelnames, buckets=buckets)  # type: ignore[return-value]

    def exposition(self) -> str:
        """Every family in the Prometheus text format."""
        return "".join(f.exposition() for _, f in sorted(self.families.items()))

    def total(self, name: str, **match: str) -> float:
        """Sum of a counter's or gauge's series whose labels include ``match``."""
        family = self.families.get(name)
        if family is None:
            return 0.0
        return sum(v for n, labels, v in family.samples()
                   if n == name and all(labels.get(k) == want for k, want in match.items()))

    def by_label(self, name: str, label: str) -> dict[str, float]:
        """A counter's or gauge's values summed per value of one label."""
        out: dict[str, float] = {}
        family = self.families.get(name)
        if family is not None:
            for n, labels, value in family.samples():
                if n == name:
                    out[labels.get(label, "")] = out.get(labels.get(label, ""), 0.0) + value
        return out


__all__ = ["CONTENT_TYPE", "Counter", "DEFAULT_BUCKETS", "Gauge", "Histogram", "Registry", "escape_label",
           "format_value"]
