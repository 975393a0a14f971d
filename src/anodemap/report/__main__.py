"""``python -m anodemap.report OUT``: write OUT/report.json and OUT/report.html.

Examples
--------
$ python -m anodemap.report study_out/
"""

from __future__ import annotations

import sys

from anodemap.errors import AnodemapError
from anodemap.report import build_report


def main(argv: list[str] | None = None) -> int:
    """Build the report of the run folder named on the command line; the exit code."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0].startswith("-"):
        print(
            "usage: python -m anodemap.report OUT  (a folder written by anodemap run)",
            file=sys.stderr,
        )
        return 2
    try:
        json_path, html_path = build_report(args[0])
    except AnodemapError as err:
        print(f"anodemap: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {json_path} and {html_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
