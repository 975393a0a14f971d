"""The analyses of anodemap, each declared once (:mod:`anodemap.analysis.base`).

An analysis is a class in its own module; it is found here by name. The built-in ones
are listed in ``_BUILTIN`` and imported when first asked for (the command line stays
quick to start); another package adds its own through the entry-point group
``anodemap.analyses`` (``name = "package.module:Class"``).

Examples
--------
>>> from anodemap.analysis import analysis_names, get_analysis
>>> analysis_names()
['eels', 'diffraction', 'pdf', 'edx', 'features', 'correlate']
>>> get_analysis("diffraction").data_kind
'4D (precession) diffraction scan'
"""

from __future__ import annotations

import importlib
from functools import cache

from anodemap.analysis.base import Analysis, Context, Outcome
from anodemap.errors import AnodemapInputError

__all__ = ["Analysis", "Context", "Outcome", "analyses_of", "analysis_names", "get_analysis"]

# name -> "module:class", in the order a study runs them (a required analysis first)
_BUILTIN = {
    "eels": "anodemap.eels.analysis:EELSAnalysis",
    "diffraction": "anodemap.diffraction.analysis:DiffractionAnalysis",
    "pdf": "anodemap.pdf.analysis:PDFAnalysis",
    "edx": "anodemap.edx.analysis:EDXAnalysis",
    "features": "anodemap.features.analysis:FeaturesAnalysis",
    "correlate": "anodemap.correlate.analysis:CorrelateAnalysis",
}


@cache
def _registry() -> dict[str, str]:
    found = dict(_BUILTIN)
    from importlib.metadata import entry_points

    for ep in entry_points(group="anodemap.analyses"):
        found.setdefault(ep.name, ep.value)
    return found


def analysis_names() -> list[str]:
    """The names of every analysis known here, built-in ones first."""
    return list(_registry())


@cache
def get_analysis(name: str) -> Analysis:
    """The analysis called ``name``.

    Raises
    ------
    AnodemapInputError
        No analysis has that name (the message lists them).
    """
    target = _registry().get(name)
    if target is None:
        raise AnodemapInputError(
            f"no analysis called {name!r}; anodemap has {', '.join(analysis_names())}"
        )
    module, _, cls = target.partition(":")
    analysis = getattr(importlib.import_module(module), cls)()
    if not isinstance(analysis, Analysis) or analysis.name != name:
        raise AnodemapInputError(f"{target} is not the analysis {name!r} (anodemap.analyses)")
    return analysis


def analyses_of(kind: str) -> tuple[str, ...]:
    """The analyses that read datasets of ``kind``, each after those it requires.

    Examples
    --------
    >>> analyses_of("eels")
    ('eels',)
    """
    names = [n for n in analysis_names() if (get_analysis(n).reads or n) == kind]
    ordered: list[str] = []

    def add(name: str, seen: tuple[str, ...] = ()) -> None:
        if name in ordered:
            return
        if name in seen:
            raise AnodemapInputError(f"analyses require each other in a cycle: {seen}")
        for required in get_analysis(name).requires:
            add(required, (*seen, name))
        ordered.append(name)

    for name in names:
        add(name)
    return tuple(ordered)
