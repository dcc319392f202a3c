"""Reading a few samples out of another service's Prometheus exposition text."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["samples_of"]


def samples_of(text: str, names: frozenset[str]) -> Iterator[tuple[str, dict[str, str], float]]:
    """``(name, labels, value)`` of every sample of the metrics ``names`` in ``text``.

    Only the lines of those metrics reach the parser: the whole exposition of an
    all-in-one process is hundreds of KiB, of which a status needs a few lines.
    """
    wanted = "\n".join(
        line
        for line in text.splitlines()
        if line and not line.startswith("#") and line.split("{", 1)[0].split(" ", 1)[0] in names
    )
    for family in text_string_to_metric_families(wanted + "\n"):
        for sample in family.samples:
            yield sample.name, dict(sample.labels), float(sample.value)
