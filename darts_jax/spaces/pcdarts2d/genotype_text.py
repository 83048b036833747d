"""Genotypes from text: the parser of the PyTorch printed form (without eval), the published genotypes by
name, and `load_genotype`, which takes a name, a JSON file or the printed form."""
from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, NoReturn

from darts_jax.spaces.pcdarts2d.config import PRIMITIVES
from darts_jax.spaces.pcdarts2d.genotype import _FIELDS, CONCAT, Genotype, validate

# -------------------------------------------------------------------------------- text parsing

class _Token(NamedTuple):
    kind: str  # "str", "int", "name", "punct" or "end"
    value: str | int
    offset: int
    raw: str


_TOKEN_RE = re.compile(r"""(?P<str>'[^'\\]*'|"[^"\\]*")|(?P<int>-?\d+)|(?P<name>[A-Za-z_]\w*)|(?P<punct>[()\[\],=])""")
_SPACE_RE = re.compile(r"\s*")


def _tokenize(text: str) -> list[_Token]:
    tokens, pos = [], 0
    while True:
        pos = _SPACE_RE.match(text, pos).end()
        if pos == len(text):
            return tokens + [_Token("end", "", pos, "")]
        match = _TOKEN_RE.match(text, pos)
        if match is None:
            raise ValueError(f"genotype string: offset {pos}: unexpected character {text[pos]!r} "
                             f"(near {text[max(0, pos - 15):pos + 15]!r})")
        kind, raw = match.lastgroup, match.group()
        value = raw[1:-1] if kind == "str" else int(raw) if kind == "int" else raw
        tokens.append(_Token(kind, value, pos, raw))
        pos = match.end()


class _Cursor:
    """Walks the token list; every failed expectation names the offset and the token found."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = _tokenize(text)
        self.index = 0

    def peek(self) -> _Token:
        return self.tokens[self.index]

    def at(self, literal: str) -> bool:
        token = self.peek()
        return token.kind in ("punct", "name") and token.value == literal

    def fail(self, expected: str) -> NoReturn:
        token = self.peek()
        found = "end of text" if token.kind == "end" else repr(token.raw)
        near = self.text[max(0, token.offset - 15):token.offset + 15]
        raise ValueError(f"genotype string: offset {token.offset}: expected {expected}, found {found} (near {near!r})")

    def take(self, kind: str, expected: str, value: str | None = None):
        token = self.peek()
        if token.kind != kind or (value is not None and token.value != value):
            self.fail(expected)
        self.index += 1
        return token.value

    def take_literal(self, literal: str) -> None:
        """Consumes a given keyword (`Genotype`, `range`) or punctuation mark."""
        self.take("name" if literal[0].isalpha() else "punct", repr(literal), literal)


def _parse_sequence(cursor: _Cursor, parse_item, what: str) -> tuple:
    """`[item, ...]` or `(item, ...)`, trailing comma allowed."""
    if cursor.at("["):
        closer = "]"
    elif cursor.at("("):
        closer = ")"
    else:
        cursor.fail(f"'[' opening {what}")
    cursor.index += 1
    items = []
    while not cursor.at(closer):
        items.append(parse_item(cursor))
        if not cursor.at(closer):
            cursor.take("punct", f"',' or '{closer}'", ",")
    cursor.take_literal(closer)
    return tuple(items)


def _parse_edge(cursor: _Cursor) -> tuple[str, int]:
    cursor.take_literal("(")
    op = cursor.take("str", "an op name in quotes")
    cursor.take_literal(",")
    source = cursor.take("int", "an input index")
    cursor.take_literal(")")
    return op, source


def _parse_concat(cursor: _Cursor) -> tuple[int, ...]:
    if cursor.at("range"):
        cursor.take_literal("range")
        cursor.take_literal("(")
        first = cursor.take("int", "the first node of range(a, b)")
        cursor.take_literal(",")
        stop = cursor.take("int", "the end of range(a, b)")
        cursor.take_literal(")")
        return tuple(range(first, stop))
    return _parse_sequence(cursor, lambda c: c.take("int", "a node index"), "a list of node indices")


def parse_genotype(text: str, primitives: Sequence[str] = PRIMITIVES) -> Genotype:
    """Parses the PyTorch printed form without eval; keyword order and whitespace are free."""
    cursor = _Cursor(text)
    cursor.take_literal("Genotype")
    cursor.take_literal("(")
    fields = {}
    while not cursor.at(")"):
        offset = cursor.peek().offset
        name = cursor.take("name", f"a field name ({', '.join(_FIELDS)})")
        if name not in _FIELDS:
            raise ValueError(f"genotype string: offset {offset}: unknown field {name!r}; "
                             f"fields are {', '.join(_FIELDS)}")
        if name in fields:
            raise ValueError(f"genotype string: offset {offset}: field {name!r} given twice")
        cursor.take_literal("=")
        fields[name] = (_parse_concat(cursor) if name.endswith("_concat")
                        else _parse_sequence(cursor, _parse_edge, "a list of (op, input) pairs"))
        if not cursor.at(")"):
            cursor.take("punct", "',' or ')'", ",")
    cursor.take_literal(")")
    cursor.take("end", "end of text")
    missing = [name for name in _FIELDS if name not in fields]
    if missing:
        raise ValueError(f"genotype string: missing field(s) {', '.join(missing)}")
    genotype = Genotype(**fields)
    validate(genotype, primitives, "genotype string")
    return genotype


# ------------------------------------------------------------------------------ known + loading

KNOWN_GENOTYPES = {
    # The authors' README "reported best architecture" (masked LFCC), spec §2.6.
    "pcdarts-lfcc": Genotype(
        normal=(("sep_conv_5x5", 0), ("sep_conv_5x5", 1), ("sep_conv_3x3", 2), ("dil_conv_5x5", 0),
                ("avg_pool_3x3", 2), ("max_pool_3x3", 3), ("avg_pool_3x3", 2), ("avg_pool_3x3", 4)),
        normal_concat=CONCAT,
        reduce=(("sep_conv_5x5", 1), ("sep_conv_3x3", 0), ("dil_conv_3x3", 2), ("avg_pool_3x3", 0),
                ("dil_conv_5x5", 2), ("sep_conv_3x3", 3), ("dil_conv_3x3", 2), ("avg_pool_3x3", 4)),
        reduce_concat=CONCAT,
    ),
}


def load_genotype(spec: str, primitives: Sequence[str] = PRIMITIVES,
                  known: Mapping[str, Genotype] = KNOWN_GENOTYPES) -> Genotype:
    """`spec` is a name in `known` (another space passes its own table), a path to a JSON file written
    by `to_json`, or a `Genotype(...)` string. A known name wins over a file of the same name."""
    if spec in known:
        genotype = known[spec]
        validate(genotype, primitives, f"known genotype {spec!r}")
        return genotype
    if spec.lstrip().startswith("Genotype"):
        return parse_genotype(spec, primitives)
    forms = (f"a known name ({', '.join(sorted(known))}), a path to a genotype JSON file, "
             f"or a string 'Genotype(normal=[...], normal_concat=..., reduce=[...], reduce_concat=...)'")
    path = Path(spec)
    if path.is_file():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{path}: not a UTF-8 text file; expected genotype JSON as written by "
                             f"Genotype.to_json") from None
        return Genotype.from_json(text, primitives, where=str(path))
    if path.suffix == ".json" or "/" in spec:
        raise FileNotFoundError(f"genotype file {spec} does not exist; a genotype is {forms}")
    raise ValueError(f"genotype {spec!r} is not recognised; a genotype is {forms}")
