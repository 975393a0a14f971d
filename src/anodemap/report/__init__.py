"""The study report: one page that shows every state of a run and compares them.

:func:`build_report` reads a run folder (``run.json`` and the analysis folders it
names) and writes ``report.json`` (every number the page shows, the input hashes and
the package versions) and ``report.html`` (one self-contained file: figures embedded,
no external resource). ``python -m anodemap.report OUT`` does the same.

Examples
--------
>>> from anodemap.report import build_report
>>> json_path, html_path = build_report("study_out/")   # doctest: +SKIP
"""

from anodemap.report.build import SCHEMA, build_report

__all__ = ["SCHEMA", "build_report"]
