"""Carrying an OpenSIPS config's `modparam("rtpproxy", ...)` lines over into rtppctl's TOML config.

This module owns how an OpenSIPS config text is read for the rtpproxy module's parameters (docs/protocol.md
§1.5) and how each one becomes an rtppctl config key. It is pure: a text and the name to use
in messages in, an `ImportedConfig` out (the settings, their TOML, what was not carried over and
why); no files, no printing. What a value must look like is not decided here: every value goes
through the config validator (`rtppctl.config.config_from_mapping`), so the TOML written always loads.

How the text is read (the command's help and the README summarise these rules). Strings, numbers
and comments follow OpenSIPS's own lexer, cfg.lex (each rule is cited in tests/test_opensips_cfg.py):

- Comments: `#` runs to the end of the line; `/* ... */` may span lines and nests (`/* a /* b */ c */`
  is one comment); neither counts inside a string. `//` is no comment to OpenSIPS: it is skipped
  to the end of the line here, with a warning, since OpenSIPS would read the rest as code. A line
  starting with `#!` is a preprocessor directive (below).
- Strings, double-quoted: the escapes `\\n \\r \\a \\t \\" \\\\`, `\\x` with one or two hex digits and
  `\\` with two or three octal digits (a byte each); a backslash before a line break removes both
  (the next line's indentation stays); any other backslash is kept as written, as OpenSIPS keeps
  it, and said so. Single-quoted: no escapes at all, a backslash is a character. In both, a line
  break is part of the value: for `rtpproxy_sock` the module splits relays at it as at any blank
  (modules/rtpproxy/rtpproxy.c, add_rtpproxy_socks), so the module documentation's wrapped
  examples (`"1 == udp:localhost:22222 udp:loca` / `lhost:22223"`) name the relays OpenSIPS reads
  (`udp:loca`, `lhost:22223`) and are not carried over; a warning names every such string. A NUL
  made by an escape ends the value (OpenSIPS keeps it as a C string); escapes making bytes that are
  no UTF-8 text are not carried over. Several strings in a row are one value, joined (cfg.y
  folded_string). There are no backtick strings in cfg.lex.
- Integers: decimal, `0x` hexadecimal, octal with a leading 0 (`010` is 8, with a warning),
  `yes true on enable` (1) and `no false off disable` (0), optionally signed; or the name of a
  `#!define`.
- `#!define NAME VALUE` (also `#!trydef`, `#!redefine`, `#!undef`) and `#!ifdef` / `#!ifndef` /
  `#!else` / `#!endif` are not OpenSIPS's: its lexer reads a `#!` line as a `#` comment (cfg.lex
  COM_LINE); they are Kamailio-style directives a preprocessor (`opensips -p`) may apply first, and
  are read here the way such a preprocessor would. A bare NAME as a modparam argument is replaced
  when VALUE is one quoted string or one integer; a NAME inside a string is never replaced. A NAME
  this file does not define that way is not carried over.
- `#!ifdef` blocks are evaluated with this file's own defines. A statement in a branch taken is
  carried over with a warning (a define given to the preprocessor would change the branch); one in
  a branch not taken is not carried over. The two branches of one `#!ifdef` are never merged.
- Module names: only `"rtpproxy"`. OpenSIPS reads the name as a regular expression, so
  `"rtpproxy|nathelper"` or `".*"` set the parameter in this module too; a name other than
  `"rtpproxy"` that names it anyway (contains "rtpproxy", or as an anchored regular expression
  matches it) is reported as not carried over: write those parameters in a line of their own.
  Every other module is ignored.
- Kinds: each parameter takes the kind section 1.5 gives it (string or integer); a value of the
  other kind is not carried over. A `rtpproxy_sock` word without a scheme that does not look like
  a socket path (`;`, `DROP`) is carried over, as the module would use it, with a warning. The
  validator converts: `rtpproxy_timeout` "0.2" -> 0.2, `rtpproxy_autobridge` 0/1 -> false/true,
  `nortpproxy_str` loses its trailing `\\r\\n` (an empty string still disables the marker). A
  parameter set twice keeps the last value, as in OpenSIPS; every `rtpproxy_sock` value is kept, in
  order, one element of the TOML list each.
- Bad input is an `InputError` naming the file and the line: a string or `/*` comment never closed,
  a `modparam(` never closed, a `modparam("rtpproxy", ...)` without exactly three arguments or with
  a parameter name that is no quoted string; and a text without any `modparam("rtpproxy", ...)`
  (naming the file). OpenSIPS would not start with any of these either.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from rtppctl.config import PARAMETERS, config_from_mapping, toml_spelling
from rtppctl.proto.errors import ConfigError, InputError
from rtppctl.proto.text import clip, shown
from rtppctl.proto.url import doubtful_paths, parse_sock_line

MODULE = "rtpproxy"

#: The module's parameters (docs/protocol.md §1.5) and the kind of value OpenSIPS takes for each,
#: read from the config's one table of keys: every one is an rtppctl key of the same name;
#: rtppctl's own keys (`ledger_ttl`, ...) are not here: a modparam naming one is no parameter of the
#: module.
MODULE_PARAMETER_KINDS: dict[str, type] = {p.name: p.kind for p in PARAMETERS if p.kind is not None}

_PORT_RANGE_KEYS = ("generated_sdp_port_min", "generated_sdp_port_max")


class Skipped(NamedTuple):
    """A modparam("rtpproxy", ...) statement that is not in the result, and why."""

    #: 1-based line of the statement (of its `modparam` word when it spans lines).
    line: int
    #: The parameter name as written (or the word standing for it).
    name: str
    reason: str


@dataclass(frozen=True)
class ImportedConfig:
    """What an OpenSIPS config carries over: settings, their TOML, and what was left out."""

    #: The name the text was read under (a path or "stdin"), as said in the TOML header.
    source: str
    #: rtppctl key -> value as the validator stores it, in `PARAMETERS` order.
    settings: dict[str, Any]
    #: The config file: a header naming the source and each skipped statement, then the keys.
    toml: str
    skipped: list[Skipped] = field(default_factory=list)
    #: "line N: ..." notes on what was read in a way that deserves a second look, in line order.
    warnings: list[str] = field(default_factory=list)
    #: Every skipped entry ("line N: NAME: REASON") and every warning, in line order: what the
    #: command says on stderr.
    messages: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------------------------------
# Reading the text into tokens
# ------------------------------------------------------------------------------------------------


class _Token(NamedTuple):
    #: "string", "number", "word", "punct" (one character) or "directive" (a whole `#!` line).
    kind: str
    #: Strings: the value with escapes applied, cut at a NUL; directives: the text after `#!`;
    #: others: as written.
    value: str
    line: int
    #: Offsets in the text, for quoting a value as written.
    start: int
    end: int
    #: Strings: the lines a raw line break inside the string led onto (the break is in the value).
    breaks: tuple[int, ...] = ()
    #: Strings: backslash sequences that are no escape of OpenSIPS's, kept as written.
    unknown_escapes: tuple[str, ...] = ()
    #: Strings: the escape that made a NUL character, where OpenSIPS's C string (and the value) ends.
    nul: str | None = None
    #: Strings: the escapes made bytes that are no UTF-8 text.
    undecodable: bool = False


class _LexError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


# The escapes of a double-quoted string, as OpenSIPS's cfg.lex has them (<STRING1> rules): \n \r \a
# \t \" \\, \x with one or two hex digits, \ with two or three octal digits; a backslash before a
# line break removes both. Single-quoted strings (<STRING2>) have none.
_ESCAPES = {"n": "\n", "r": "\r", "a": "\a", "t": "\t", '"': '"', "\\": "\\"}
_HEX_ESCAPE = re.compile(r"x([0-9A-Fa-f]{1,2})")
_OCTAL_ESCAPE = re.compile(r"[0-7]{2,3}")
_PLAIN_RUN = {'"': re.compile(r'[^"\\\n]+'), "'": re.compile(r"[^'\n]+")}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Digits and whatever letters follow them form one token, so "0x1F" is one value to read and
# "1e3" one to refuse, not two.
_NUMBER = re.compile(r"[0-9][A-Za-z0-9_]*")
_BLANKS = " \t\r\f\v"


def _lex(text: str, notes: list[tuple[int, str]] | None = None) -> list[_Token]:
    """Strings, numbers, words, punctuation and `#!` directives, with every comment dropped;
    what deserves a warning goes to `notes` as (line, text)."""
    tokens: list[_Token] = []
    notes = [] if notes is None else notes
    index, line, length = 0, 1, len(text)
    if text.startswith("\ufeff"):
        index = 1  # a byte-order mark is no part of the first line's text
    at_line_start = True  # only blanks so far on this line: a `#!` here is a directive
    while index < length:
        char = text[index]
        if char == "\n":
            line += 1
            index += 1
            at_line_start = True
        elif char in _BLANKS:
            index += 1
        elif char == "#" and at_line_start and text.startswith("#!", index):
            start, first_line = index, line
            body, index, line = _directive_body(text, index + 2, line)
            tokens.append(_Token("directive", body, first_line, start, index))
        elif char == "#":
            end = text.find("\n", index)
            index = length if end < 0 else end
        elif text.startswith("//", index):
            notes.append((line, "'//' starts no comment for OpenSIPS (cfg.lex knows only # and /* */), which reads "
                                "the rest of the line as code; skipped here"))
            end = text.find("\n", index)
            index = length if end < 0 else end
        elif text.startswith("/*", index):
            index, line = _block_comment(text, index, line)
            at_line_start = False
        elif char in "\"'":
            token, index, line = _string(text, index, line)
            tokens.append(token)
            at_line_start = False
        else:
            match = _WORD.match(text, index) or _NUMBER.match(text, index)
            if match is None:
                tokens.append(_Token("punct", char, line, index, index + 1))
                index += 1
            else:
                kind = "number" if char.isdigit() else "word"
                tokens.append(_Token(kind, match.group(), line, index, match.end()))
                index = match.end()
            at_line_start = False
    return tokens


def _block_comment(text: str, index: int, line: int) -> tuple[int, int]:
    """Past the `/* ... */` at `index`: comments nest, as in cfg.lex (<INITIAL,COMMENT>{COM_START}
    counts comment_nest up, <COMMENT>{COM_END} down)."""
    first_line, depth, index = line, 0, index
    while True:
        opening, closing = text.find("/*", index), text.find("*/", index)
        if closing < 0:
            raise _LexError(first_line, "a /* comment is never closed with */")
        if 0 <= opening < closing:
            line += text.count("\n", index, opening)
            depth += 1
            index = opening + 2
            continue
        line += text.count("\n", index, closing)
        depth -= 1
        index = closing + 2
        if depth == 0:
            return index, line


def _directive_body(text: str, index: int, line: int) -> tuple[str, int, int]:
    """The rest of a `#!` line, continued over lines ending in a backslash (spliced as a C
    preprocessor splices them: the backslash and the line break go, the next line's blanks stay);
    stops at the newline."""
    pieces = []
    while True:
        end = text.find("\n", index)
        end = len(text) if end < 0 else end
        piece = text[index:end].rstrip("\r")
        if piece.endswith("\\") and end < len(text):
            pieces.append(piece[:-1])
            index = end + 1
            line += 1
            continue
        pieces.append(piece)
        return "".join(pieces), end, line


def _string(text: str, index: int, line: int) -> tuple[_Token, int, int]:
    """A quoted string starting at `index`, read as cfg.lex reads it: (token, index after it, line
    after it). Double quotes know the escapes above; single quotes none; in both a line break is
    part of the value. Escapes make bytes (\\xe9 is one byte), so the value is decoded as UTF-8 at
    the end; it ends at a NUL, as OpenSIPS's C string does."""
    quote = text[index]
    start, first_line = index, line
    index += 1
    value = bytearray()
    breaks: list[int] = []
    unknown: list[str] = []
    nul: str | None = None
    length = len(text)
    while True:
        if index >= length:
            raise _LexError(first_line, f"a string opened with {quote} is never closed")
        plain = _PLAIN_RUN[quote].match(text, index)
        if plain is not None:  # a run of ordinary characters at once: a long value costs no loop per character
            value += plain.group().encode("utf-8", "surrogatepass")
            index = plain.end()
            continue
        char = text[index]
        if char == quote:
            index += 1
            break
        if char == "\n":
            line += 1
            breaks.append(line)
        elif char == "\\" and quote == '"' and index + 1 < length:
            escaped = text[index + 1]
            made: bytes | None = None
            if escaped == "\n":
                # <STRING1>\\{CR}: the backslash and the line break are both dropped.
                line += 1
                index += 2
                continue
            if escaped in _ESCAPES:
                made, size = _ESCAPES[escaped].encode(), 2
            elif (match := _HEX_ESCAPE.match(text, index + 1)) is not None:
                made, size = bytes([int(match.group(1), 16)]), 1 + len(match.group())
            elif (match := _OCTAL_ESCAPE.match(text, index + 1)) is not None:
                # (char)strtol(...): a value above 255 keeps its low byte.
                made, size = bytes([int(match.group(), 8) & 0xFF]), 1 + len(match.group())
            if made is None:
                # <STRING1>.: the backslash is a character like any other; what follows is read
                # on its own (so "\\\"" is a backslash and the end of the string).
                unknown.append(char + escaped)
            else:
                if made == b"\x00" and nul is None:
                    nul = text[index : index + size]
                value += made
                index += size
                continue
        value += char.encode("utf-8", "surrogatepass")
        index += 1
    raw = bytes(value)
    if nul is not None:
        raw = raw.partition(b"\x00")[0]
    try:
        decoded, undecodable = raw.decode("utf-8"), False
    except UnicodeDecodeError:
        decoded, undecodable = raw.decode("utf-8", "backslashreplace"), True
    token = _Token("string", decoded, first_line, start, index, tuple(breaks), tuple(unknown), nul, undecodable)
    return token, index, line


# ------------------------------------------------------------------------------------------------
# Reading the statements
# ------------------------------------------------------------------------------------------------


@dataclass
class _Define:
    line: int
    text: str
    #: The value a bare use stands for: one string or integer; None when the define is not that plain.
    value: str | int | None


@dataclass
class _Condition:
    """One open `#!ifdef NAME` / `#!ifndef NAME`, in its first branch or (after `#!else`) its second."""

    directive: str
    name: str
    line: int
    #: Whether the condition holds with this file's defines.
    holds: bool
    in_else: bool = False

    @property
    def taken(self) -> bool:
        return self.holds != self.in_else

    def where(self) -> str:
        opening = f"#!{self.directive} {self.name} (line {self.line})"
        return f"the #!else of {opening}" if self.in_else else opening

    def why(self) -> str:
        defined = (self.directive == "ifdef") == self.holds
        return f"{self.name} is {'' if defined else 'not '}defined in this file"


class _NotCarried(Exception):
    """A statement that cannot be carried over: becomes one `Skipped` entry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Reader:
    """Walks the tokens once, in file order, as OpenSIPS reads the file."""

    def __init__(self, text: str, source: str) -> None:
        self.text = text
        self.source = source
        #: The validator names this path in its messages; the reasons leave it out again.
        self.where = Path(source)
        self.defines: dict[str, _Define] = {}
        self.conditions: list[_Condition] = []
        self.found = False
        self.socks: list[tuple[int, str]] = []
        #: key -> (line, value as the validator stores it)
        self.values: dict[str, tuple[int, Any]] = {}
        self.skipped: list[Skipped] = []
        #: (line, text): the line leads the text once they are sorted.
        self.warnings: list[tuple[int, str]] = []

    # -- walking --------------------------------------------------------------------------------

    def read(self, tokens: list[_Token]) -> None:
        index = 0
        while index < len(tokens):
            token = tokens[index]
            following = tokens[index + 1] if index + 1 < len(tokens) else None
            if token.kind == "directive":
                self._directive(token)
            elif token.kind == "word" and token.value == "modparam" and _is_punct(following, "("):
                arguments, index = self._arguments(tokens, index + 2, token.line)
                self._modparam(token.line, arguments)
                continue
            elif token.kind == "word" and token.value in ("include_file", "import_file") and following is not None \
                    and following.kind == "string" and self._active():
                self._warn(
                    token.line,
                    f"{token.value} {toml_spelling(following.value)} is not followed; "
                    "import that file on its own if it has rtpproxy parameters",
                )
            index += 1
        for condition in self.conditions:
            self._warn(condition.line, f"#!{condition.directive} {condition.name} is never closed with #!endif")

    def _arguments(self, tokens: list[_Token], index: int, line: int) -> tuple[list[list[_Token]], int]:
        """The arguments of `modparam(` (split at commas outside parentheses), and the index after `)`."""
        arguments: list[list[_Token]] = [[]]
        depth = 0
        while index < len(tokens):
            token = tokens[index]
            index += 1
            if token.kind == "punct" and token.value == ")" and depth == 0:
                return arguments, index
            if token.kind == "punct" and token.value == "," and depth == 0:
                arguments.append([])
                continue
            if token.kind == "punct" and token.value in "()":
                depth += 1 if token.value == "(" else -1
            arguments[-1].append(token)
        raise InputError(f"{self.source}: line {line}: modparam( is never closed with )")

    def _warn(self, line: int, text: str) -> None:
        self.warnings.append((line, text))

    def _active(self) -> bool:
        return all(condition.taken for condition in self.conditions)

    # -- preprocessor directives ----------------------------------------------------------------

    def _directive(self, token: _Token) -> None:
        # "#!define NAME VALUE": the value is whatever follows the name, re-read as tokens when used.
        keyword, name, value_text = (token.value.split(None, 2) + ["", "", ""])[:3]
        if keyword in ("define", "trydef", "redefine"):
            if self._active() and name and not (keyword == "trydef" and name in self.defines):
                self.defines[name] = _Define(token.line, value_text, self._plain_value(value_text))
        elif keyword == "undef":
            if self._active():
                self.defines.pop(name, None)
        elif keyword in ("ifdef", "ifndef"):
            holds = (name in self.defines) == (keyword == "ifdef")
            self.conditions.append(_Condition(keyword, clip(name, 60) or "(no name)", token.line, holds))
        elif keyword == "else":
            if not self.conditions or self.conditions[-1].in_else:
                self._warn(token.line, "#!else without an open #!ifdef or #!ifndef; ignored")
            else:
                self.conditions[-1].in_else = True
        elif keyword == "endif":
            if self.conditions:
                self.conditions.pop()
            else:
                self._warn(token.line, "#!endif without an open #!ifdef or #!ifndef; ignored")
        elif keyword in ("subst", "substdef", "substdefs") and self._active():
            self._warn(token.line, f"#!{keyword} is not applied: values are read as written")
        # Anything else after `#!` (a `#!OPENSIPS` banner, say) changes no value: a comment.

    @staticmethod
    def _plain_value(text: str) -> str | int | None:
        """What a define stands for when used bare: one string or one integer, else None."""
        try:
            tokens = _lex(text)
        except _LexError:
            return None
        if len(tokens) == 1 and tokens[0].kind == "string":
            return tokens[0].value
        return _integer(tokens)

    # -- one modparam statement -----------------------------------------------------------------

    def _modparam(self, line: int, arguments: list[list[_Token]]) -> None:
        module = self._module_name(arguments[0])
        if module is None or (module != MODULE and not _names_rtpproxy(module)):
            return  # another module's parameter (or one whose module cannot be told): not ours
        self.found = True
        if len(arguments) != 3:
            raise InputError(
                f"{self.source}: line {line}: modparam({toml_spelling(module)}, ...) needs three arguments "
                f"(module, parameter, value), got {len(arguments)}"
            )
        name_tokens, value_tokens = arguments[1], arguments[2]
        name = self._parameter_name(line, name_tokens)
        try:
            if not self._active():
                failing = next(condition for condition in self.conditions if not condition.taken)
                raise _NotCarried(f"inside {failing.where()}, a branch not taken: {failing.why()}")
            if name is None:
                raise _NotCarried(f"{_as_written(self.text, name_tokens)} is not a #!define of this file "
                                  "standing for a quoted parameter name")
            if module != MODULE:
                raise _NotCarried(
                    f"the module name {toml_spelling(module)} is not \"{MODULE}\" (OpenSIPS reads it as a regular "
                    f"expression); write it as modparam(\"{MODULE}\", ...) to carry it over"
                )
            self._carry_over(line, name, value_tokens)
        except _NotCarried as exc:
            written = clip(name, 60) if name is not None else _as_written(self.text, name_tokens)
            self.skipped.append(Skipped(line, written, exc.reason))

    def _module_name(self, tokens: list[_Token]) -> str | None:
        value = self._single_value(tokens)
        return value if isinstance(value, str) else None

    def _parameter_name(self, line: int, tokens: list[_Token]) -> str | None:
        if len(tokens) == 1 and tokens[0].kind == "word":
            value = self._single_value(tokens)
            return value if isinstance(value, str) else None
        if len(tokens) != 1 or tokens[0].kind != "string":
            raise InputError(
                f"{self.source}: line {line}: the parameter name in modparam(\"{MODULE}\", ...) must be a quoted string, "
                f"not {_as_written(self.text, tokens) or 'nothing'}"
            )
        return tokens[0].value

    def _single_value(self, tokens: list[_Token]) -> str | int | None:
        """One string, one integer, or a define standing for one; None otherwise."""
        if len(tokens) == 1 and tokens[0].kind == "string":
            return tokens[0].value
        if len(tokens) == 1 and tokens[0].kind == "word":
            define = self.defines.get(tokens[0].value)
            return define.value if define is not None else None
        return _integer(tokens)

    def _carry_over(self, line: int, name: str, tokens: list[_Token]) -> None:
        kind = MODULE_PARAMETER_KINDS.get(name)
        if kind is None:
            import difflib  # noqa: PLC0415 - only for a misspelt name

            # A name far longer than any parameter's is no misspelling (and would cost difflib seconds).
            close = difflib.get_close_matches(name, list(MODULE_PARAMETER_KINDS), n=1, cutoff=0.6) if len(name) < 64 else []
            raise _NotCarried(
                "not a parameter of the OpenSIPS rtpproxy module" + (f"; did you mean {close[0]}?" if close else "")
            )
        value = self._value(line, name, tokens)
        if kind is int and not isinstance(value, int):
            raise _NotCarried(f"the module takes an integer here, not the string {toml_spelling(value)} (write it without quotes)")
        if kind is str and not isinstance(value, str):
            raise _NotCarried(f"the module takes a string here, not the integer {value} (write it in quotes)")
        if name == "rtpproxy_sock":
            self._carry_sock(line, value)
        else:
            self._carry_key(line, name, value)
        if self.conditions:
            self._warn(
                line,
                f"{name}: inside {' and '.join(c.where() for c in self.conditions)}; carried over because "
                f"{' and '.join(c.why() for c in self.conditions)} (a define given when OpenSIPS starts could change that)",
            )

    def _value(self, line: int, name: str, tokens: list[_Token]) -> str | int:
        if not tokens:
            raise _NotCarried("no value")
        if all(token.kind == "string" for token in tokens):
            return self._string_value(line, name, tokens)
        if len(tokens) == 1 and tokens[0].kind == "word" and tokens[0].value in _BOOLEAN_WORDS:
            return _BOOLEAN_WORDS[tokens[0].value]
        if len(tokens) == 1 and tokens[0].kind == "word":
            word = tokens[0].value
            define = self.defines.get(word)
            if define is None:
                raise _NotCarried(
                    f"{clip(word, 60)} is not a #!define of this file (defined elsewhere, or by a preprocessor?)")
            if define.value is None:
                spelled = " ".join(define.text.split()) or "nothing"
                raise _NotCarried(
                    f"{clip(word, 60)} is defined as {_shortened(spelled)} (line {define.line}), "
                    "not as one quoted string or integer"
                )
            return define.value
        number = _integer(tokens)
        if number is not None:
            written = tokens[-1].value
            if re.fullmatch(r"0[0-7]+", written):
                self._warn(line, f"{name}: {written} is octal to OpenSIPS (cfg.lex OCTNUMBER): read as {abs(number)}")
            return number
        first = tokens[0]
        if first.kind == "string" and self.text[first.start] == "'" and first.value.endswith("\\"):
            raise _NotCarried(
                f"the value {_as_written(self.text, tokens)} is not one string: OpenSIPS knows no escapes between "
                "single quotes (cfg.lex <STRING2>), so the quote after the backslash ends the string"
            )
        raise _NotCarried(
            f"the value {_as_written(self.text, tokens)} is not a quoted string, an integer or a #!define name"
        )

    def _string_value(self, line: int, name: str, tokens: list[_Token]) -> str:
        """One string, or several in a row: cfg.y's folded_string joins them (strcpy/strcat, so
        each piece ends at its NUL)."""
        for token in tokens:
            if token.undecodable:
                raise _NotCarried(f"the escapes in {_as_written(self.text, [token])} make bytes that are not UTF-8 text")
        value = "".join(token.value for token in tokens)
        breaks = [number for token in tokens for number in token.breaks]
        if breaks:
            later = ", ".join(str(number) for number in breaks)
            split = ", and the module splits relays at it as at any blank" if name == "rtpproxy_sock" else ""
            self._warn(line, f"{name}: the string goes on over a line break (onto line {later}); OpenSIPS keeps the "
                             f"break in the value (cfg.lex){split}: {toml_spelling(value)}")
        for escape in dict.fromkeys(escape for token in tokens for escape in token.unknown_escapes):
            self._warn(line, f"{name}: {_comment(escape)} is no escape OpenSIPS knows (cfg.lex); the backslash is kept, "
                             "as OpenSIPS keeps it")
        for token in tokens:
            if token.nul is not None:
                self._warn(line, f"{name}: {token.nul} is a NUL character, where OpenSIPS's C string ends; "
                                 f"read up to it: {toml_spelling(token.value)}")
        return value

    def _carry_sock(self, line: int, value: str) -> None:
        if not value.strip():
            raise _NotCarried("an empty value (the module ignores it)")
        try:
            config_from_mapping({"rtpproxy_sock": [value]}, self.where).sets()
        except ConfigError as exc:
            raise _NotCarried(self._reason(exc, "rtpproxy_sock")) from None
        _, nodes = parse_sock_line(value)
        doubtful = doubtful_paths(nodes)
        if doubtful:
            words = ", ".join(shown(word, 40) for word in doubtful[:5]) + (" ..." if len(doubtful) > 5 else "")
            self._warn(line, f"rtpproxy_sock: {words} {'does' if len(doubtful) == 1 else 'do'} not look like a socket "
                             "path; the module reads a word without a scheme as a unix socket in its working directory "
                             "(write unix:NAME or ./NAME if that is meant)")
        self.socks.append((line, value))

    def _carry_key(self, line: int, name: str, value: str | int) -> None:
        # The other end of the port range at the same value: the validator swaps a reversed range,
        # which must not change what this one key reads as.
        mapping: dict[str, Any] = {key: value for key in _PORT_RANGE_KEYS} if name in _PORT_RANGE_KEYS else {name: value}
        try:
            config = config_from_mapping(mapping, self.where)
        except ConfigError as exc:
            raise _NotCarried(self._reason(exc, name)) from None
        if name in self.values:
            earlier = self.values[name][0]
            self._warn(line, f"{name}: set again (also at line {earlier}); the last value counts, as in OpenSIPS")
        self.values[name] = (line, getattr(config, name))

    def _reason(self, error: ConfigError, name: str) -> str:
        """The validator's message without the file and key it starts with (the entry names both)."""
        return clip(error.message.removeprefix(f"{self.where}: ").removeprefix(f"{name}: "), 300)

    # -- the result -----------------------------------------------------------------------------

    def settings(self) -> dict[str, Any]:
        settings: dict[str, Any] = {}
        for parameter in PARAMETERS:
            if parameter.name == "rtpproxy_sock" and self.socks:
                settings["rtpproxy_sock"] = [value for _, value in self.socks]
            elif parameter.name in self.values:
                settings[parameter.name] = self.values[parameter.name][1]
        low, high = (settings.get(key) for key in _PORT_RANGE_KEYS)
        if low is not None and high is not None and low > high:
            self._warn(
                self.values["generated_sdp_port_max"][0],
                f"generated_sdp_port_max ({high}) is below generated_sdp_port_min ({low}); "
                "the module swaps them, and so does rtppctl",
            )
        return settings


def _is_punct(token: _Token | None, char: str) -> bool:
    return token is not None and token.kind == "punct" and token.value == char


#: Words cfg.lex reads as the numbers 1 and 0 ({YES} and {NO}: lower case only).
_BOOLEAN_WORDS = {"yes": 1, "true": 1, "on": 1, "enable": 1, "no": 0, "false": 0, "off": 0, "disable": 0}


def _integer(tokens: list[_Token]) -> int | None:
    """An integer as cfg.lex and cfg.y's snumber read one, from its tokens: optionally signed,
    decimal ({NUMBER}: 0 or no leading zero), hexadecimal (0x...) or octal (0 and octal digits),
    or a {YES}/{NO} word; None when the tokens are not one."""
    sign = 1
    if len(tokens) == 2 and tokens[0].kind == "punct" and tokens[0].value in "+-":
        sign = -1 if tokens[0].value == "-" else 1
        tokens = tokens[1:]
    if len(tokens) != 1:
        return None
    token = tokens[0]
    if token.kind == "word" and token.value in _BOOLEAN_WORDS:
        return sign * _BOOLEAN_WORDS[token.value]
    if token.kind != "number" or len(token.value) > 30:
        return None
    for pattern, base in ((r"0|[1-9][0-9]*", 10), (r"0x[0-9A-Fa-f]+", 16), (r"0[0-7]+", 8)):
        if re.fullmatch(pattern, token.value):
            return sign * int(token.value, base)
    return None


def _names_rtpproxy(module: str) -> bool:
    """Whether a module name other than "rtpproxy" would still set the rtpproxy module's parameter."""
    if MODULE in module.lower():
        return True
    import warnings  # noqa: PLC0415

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set" and the like: a pattern from the file
            return re.fullmatch(module, MODULE) is not None
    except (re.error, RecursionError):
        return False


def _as_written(text: str, tokens: list[_Token]) -> str:
    if not tokens:
        return ""
    return _shortened(" ".join(text[tokens[0].start : tokens[-1].end].split()))


def _shortened(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ------------------------------------------------------------------------------------------------
# The whole import
# ------------------------------------------------------------------------------------------------


def import_opensips_config(text: str, source: str) -> ImportedConfig:
    """Every modparam("rtpproxy", ...) of an OpenSIPS config text, as rtppctl settings and TOML.

    `source` names the text in messages and in the TOML header (a path, or "stdin"). Raises
    `InputError` naming `source` and the line for text that cannot be read (see the module docs)
    and when the text has no modparam("rtpproxy", ...) at all.
    """
    notes: list[tuple[int, str]] = []
    try:
        tokens = _lex(text, notes)
    except _LexError as exc:
        raise InputError(f"{source}: line {exc.line}: {exc.message}") from None
    reader = _Reader(text, source)
    reader.warnings.extend(notes)
    reader.read(tokens)
    if not reader.found:
        raise InputError(
            f'no modparam("{MODULE}", ...) in {source}',
            "give the OpenSIPS config that loads the rtpproxy module (opensips.cfg)",
        )
    settings = reader.settings()
    toml_text = _toml(source, settings, reader.skipped)
    _check_loads(toml_text, reader.where)
    notes = sorted(reader.warnings, key=lambda note: note[0])
    warnings = [f"line {line}: {text}" for line, text in notes]
    messages = sorted(
        [(entry.line, f"line {entry.line}: {entry.name}: {entry.reason}") for entry in reader.skipped]
        + [(line, f"line {line}: {text}") for line, text in notes],
        key=lambda message: message[0],
    )
    # One line each on stderr, whatever a parameter name from the file holds.
    lines = [_comment(text) for _, text in messages]
    return ImportedConfig(source, settings, toml_text, reader.skipped, warnings, lines)


def _toml(source: str, settings: dict[str, Any], skipped: list[Skipped]) -> str:
    import tomli_w  # noqa: PLC0415 - only when writing

    header = [
        f"# rtppctl configuration imported from {_comment(source)} by `rtppctl config import-opensips`.",
        '# One key per modparam("rtpproxy", ...) parameter; keys not here keep their defaults (rtppctl config show).',
    ]
    if skipped:
        header.append("# Not carried over:")
        header += [f"#   line {entry.line}: {_comment(entry.name)}: {_comment(entry.reason)}" for entry in skipped]
    # One key at a time, as the starter file is written, so each stays one line (lists aside).
    body = "".join(tomli_w.dumps({key: value}) for key, value in settings.items())
    return "\n".join(header) + "\n" + ("\n" + body if body else "")


def _comment(text: str) -> str:
    """Text safe inside a TOML comment: one line, no control characters (names come from the file)."""
    return re.sub(r"[\x00-\x08\x0a-\x1f\x7f]", lambda match: f"\\x{ord(match.group()):02x}", text)


def _check_loads(toml_text: str, where: Path) -> None:
    """The promise of the command: what it writes loads as a config file, sets and all."""
    import tomllib  # noqa: PLC0415

    config_from_mapping(tomllib.loads(toml_text), where).sets()
