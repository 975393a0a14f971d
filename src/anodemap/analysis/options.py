"""Command-line options declared on the parameter fields of an analysis.

A field of a parameters dataclass that the command line sets carries its option in its
metadata (:func:`option`): the flag, the unit, the help text and how the text is parsed
and checked. The command line is built from them (:func:`add_options`) and the
parameters from what was given (:func:`parameters_from_args`): the defaults stay in one
place, the dataclass, and the help shows them with their units.

Examples
--------
>>> import argparse
>>> from dataclasses import dataclass, field
>>> @dataclass
... class P:
...     iterations: int = field(default=15, metadata=option(
...         "--iterations", "Richardson-Lucy iterations", parse=number(int, least=1)))
>>> parser = argparse.ArgumentParser()
>>> add_options(parser, P)
>>> parameters_from_args(P, parser.parse_args(["--iterations", "4"]))
P(iterations=4)
>>> parameters_from_args(P, parser.parse_args([]))
P(iterations=15)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["Option", "add_options", "number", "option", "parameters_from_args"]


@dataclass(frozen=True)
class Option:
    """How a parameter field appears on the command line.

    Attributes
    ----------
    flag : str
        The option (``--iterations``); one name per quantity across every command.
    help : str
        What it sets.
    unit : str
        Its unit (shown in the help), "" for none.
    parse : callable, optional
        argparse ``type=``: parses and checks one word.
    choices : sequence, optional
        The allowed values.
    nargs : int or str, optional
        As argparse's.
    metavar : str or tuple, optional
        As argparse's (default: the unit in capitals, or VALUE).
    action : type, optional
        An argparse action (e.g. :class:`argparse.BooleanOptionalAction`).
    convert : callable, optional
        Turns the parsed value into the field's value (e.g. words into a window).
    aliases : tuple of str
        Older flags still accepted (not shown in the help).
    default_text : str, optional
        What a default of None means (e.g. "from the file").
    """

    flag: str
    help: str
    unit: str = ""
    parse: Callable[[str], Any] | None = None
    choices: tuple[Any, ...] | None = None
    nargs: int | str | None = None
    metavar: str | tuple[str, ...] | None = None
    action: Any = None
    convert: Callable[[Any], Any] | None = None
    aliases: tuple[str, ...] = ()
    default_text: str | None = None


def option(flag: str, help: str, **kwargs: Any) -> dict[str, Option]:
    """The metadata of a field set by the command-line option ``flag`` (see
    :class:`Option` for the keywords)."""
    return {"option": Option(flag, help, **kwargs)}


def number(
    kind: type = float, *, above: float | None = None, least: float | None = None, unit: str = ""
) -> Callable[[str], Any]:
    """An argparse ``type=`` that parses a finite number and checks its range.

    A value out of range raises :class:`argparse.ArgumentTypeError`, which argparse turns
    into ``anodemap CMD: error: argument --OPTION: ...`` and exit code 2, before anything
    is read or computed.

    Parameters
    ----------
    kind : {float, int}
        Parse as a real or a whole number.
    above : float, optional
        The value must be greater than this.
    least : float, optional
        The value must be at least this.
    unit : str
        Named in the message after the bound (``" eV"``, ``" nm"``, ...).

    Examples
    --------
    >>> number(int, least=1)("3")
    3
    >>> number(above=0, unit=" keV")("0")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be greater than 0 keV, not 0
    """
    whole = kind is int

    def parse(text: str) -> Any:
        try:
            value = int(text) if whole else float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a {'whole number' if whole else 'number'}"
            ) from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, not {text}")
        if above is not None and not value > above:
            raise argparse.ArgumentTypeError(f"must be greater than {above:g}{unit}, not {text}")
        if least is not None and not value >= least:
            raise argparse.ArgumentTypeError(f"must be at least {least:g}{unit}, not {text}")
        return value

    parse.__name__ = "whole number" if whole else "number"  # argparse's fallback wording
    return parse


def _options(parameters: type) -> list[tuple[dataclasses.Field, Option]]:
    return [
        (f, f.metadata["option"])
        for f in dataclasses.fields(parameters)
        if isinstance(f.metadata.get("option"), Option)
    ]


def _default_text(f: dataclasses.Field, opt: Option) -> str:
    value = f.default if f.default is not dataclasses.MISSING else None
    if opt.action is argparse.BooleanOptionalAction:
        return f"default: {opt.flag if value else '--no-' + opt.flag[2:]}"
    if value is None:
        return f"default: {opt.default_text}" if opt.default_text else ""
    if isinstance(value, tuple | list):
        value = " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    elif isinstance(value, float):
        value = f"{value:g}"
    return f"default {value}{' ' + opt.unit if opt.unit and opt.unit != '%' else opt.unit}"


def add_options(parser: argparse.ArgumentParser, parameters: type) -> None:
    """Add an option to ``parser`` for every field of ``parameters`` that declares one.

    The option's destination is the field's name and its default None (the field's
    own default applies: :func:`parameters_from_args`).
    """
    for f, opt in _options(parameters):
        default = _default_text(f, opt)
        unit = f"in {opt.unit}" if opt.unit and not default.endswith(opt.unit) else ""
        if unit and default.startswith("default "):  # "default 1.5 degrees" says the unit
            unit = ""
        extra = "; ".join(t for t in (unit, default) if t)
        kwargs: dict[str, Any] = {
            "dest": f.name,
            "default": None,
            "help": opt.help + (f" ({extra})" if extra else ""),
        }
        if opt.action is not None:
            kwargs["action"] = opt.action
        if opt.parse is not None:
            kwargs["type"] = opt.parse
        if opt.choices is not None:
            kwargs["choices"] = list(opt.choices)
        if opt.nargs is not None:
            kwargs["nargs"] = opt.nargs
        if opt.action is not argparse.BooleanOptionalAction and opt.choices is None:
            kwargs["metavar"] = opt.metavar or (opt.unit.upper().replace("/", "_") or "VALUE")
        parser.add_argument(opt.flag, **kwargs)
        for alias in opt.aliases:  # an older name: accepted, not advertised
            parser.add_argument(alias, **{**kwargs, "help": argparse.SUPPRESS})


def parameters_from_args(parameters: type, args: argparse.Namespace, **fixed: Any) -> Any:
    """The parameters dataclass from the options given in ``args`` (the others keep their
    defaults) and the fields in ``fixed``."""
    values = dict(fixed)
    for f, opt in _options(parameters):
        given = getattr(args, f.name, None)
        if given is None:
            continue
        values[f.name] = opt.convert(given) if opt.convert else given
    return parameters(**values)


class WindowAction(argparse.Action):
    """``--window LO HI | auto`` checked where it is parsed: two finite energies,
    0 < LO < HI, or the word auto (exit code 2 with the option named, as for numbers)."""

    def __call__(self, parser, namespace, values, option_string=None):
        words = list(values)
        if [w.lower() for w in words] != ["auto"]:
            try:
                lo, hi = (float(w) for w in words)
            except ValueError:
                lo = hi = math.nan
            if not (math.isfinite(lo) and math.isfinite(hi) and 0 < lo < hi):
                parser.error(
                    f"argument {option_string}: give two finite energies in eV, 0 < LO < HI "
                    f"(e.g. --window 8 25), or --window auto, not {' '.join(words)}"
                )
        setattr(namespace, self.dest, words)


def window_value(words: list[str]) -> tuple[float, float] | str:
    """The words of ``--window`` as the window: ``"auto"`` or (LO, HI).

    Examples
    --------
    >>> window_value(["8", "25"]), window_value(["AUTO"])
    ((8.0, 25.0), 'auto')
    """
    if [w.lower() for w in words] == ["auto"]:
        return "auto"
    lo, hi = (float(w) for w in words)
    return (lo, hi)
