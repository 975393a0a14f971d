"""``python -m anodemap ...``: the ``anodemap`` command."""

from anodemap.cli import run

if __name__ == "__main__":  # pragma: no cover
    run()
