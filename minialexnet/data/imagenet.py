"""The 1,000 ILSVRC-2012 classes, in the order trained ImageNet weights use.

``imagenet_classes.txt`` (shipped with the package) has one line per class: its
WordNet id and its names, ``n02123045 tabby, tabby cat``. The lines are sorted by
WordNet id, which is the order of the classes in Caffe's ``synset_words.txt`` and
so the order of the 1,000 outputs of ``bvlc_alexnet``, of the ONNX model zoo's copy
of it and of torchvision's ImageNet models: output 281 is "tabby".
"""

from __future__ import annotations

from functools import cache
from importlib import resources

__all__ = ["imagenet_classes", "imagenet_wordnet"]


@cache
def _lines() -> tuple[tuple[str, str], ...]:
    text = resources.files(__package__).joinpath("imagenet_classes.txt").read_text("utf-8")
    rows = tuple(tuple(line.split(" ", 1)) for line in text.splitlines() if line.strip())
    if len(rows) != 1000 or any(len(r) != 2 for r in rows):
        raise RuntimeError(
            "minialexnet/data/imagenet_classes.txt is damaged: reinstall the package"
        )
    return rows  # type: ignore[return-value]


def imagenet_classes() -> list[str]:
    """The 1,000 class names, each the first of its synset's names (``"tabby"``), in the
    weights' output order. Two names serve two synsets each ("crane": the bird and the
    machine; "maillot"): those carry their WordNet id, ``"crane (n03126707)"``."""
    first = [names.split(",")[0].strip() for _, names in _lines()]
    return [
        f"{name} ({wnid})" if first.count(name) > 1 else name
        for name, (wnid, _) in zip(first, _lines(), strict=True)
    ]


def imagenet_wordnet() -> list[tuple[str, str]]:
    """``(wordnet_id, all names)`` per class: ``("n02123045", "tabby, tabby cat")``."""
    return [(wnid, names) for wnid, names in _lines()]
