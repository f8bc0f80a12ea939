"""What two versions of one artifact differ in, split by whether a reader would notice."""

from __future__ import annotations

from dataclasses import dataclass

from model_bisect.culprit.graph import short

__all__ = ["Difference", "short"]


@dataclass(frozen=True)
class Difference:
    """``metadata``: bytes a reader ignores (writer name, codec, producer); ``content``: what
    it gets back (values, schema, weights, graph). Each entry is one line for a person."""

    metadata: tuple[str, ...] = ()
    content: tuple[str, ...] = ()
