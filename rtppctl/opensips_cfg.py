"""Carrying an OpenSIPS config's `modparam("rtpproxy", ...)` lines over into rtppctl's TOML config.

This module owns how an OpenSIPS config text is read for the rtpproxy module's parameters (reference
section 1.5) and how each one becomes an rtppctl config key. It is pure: a text and the name to use
in messages in, an `ImportedConfig` out (the settings, their TOML, what was not carried over and
why); no files, no printing. What a value must look like is not decided here: every value goes
through the config validator (`rtppctl.config.config_from_mapping`), so the TOML written always loads.

How the text is read (the command's help and the README summarise these rules):

- Comments: `#` and `//` run to the end of the line, `/* ... */` may span lines; none of them
  counts inside a string. A line starting with `#!` is a preprocessor directive (below).
- Values: a string in double or single quotes, with the escapes `\\n \\r \\t \\\\ \\" \\'` (any other
  backslash is kept as written, and said so), a decimal integer (optionally signed), or the name
  of a `#!define`.
- A line break inside a quoted string: OpenSIPS refuses one, but the module's documentation wraps
  long values that way (`"1 == udp:localhost:22222 udp:loca` / `lhost:22223"`). Such a value is read
  as meant: the pieces are joined without the line break and without the next line's leading
  indentation, and a warning shows the joined value so it can be checked.
- `#!define NAME VALUE` (also `#!trydef`, `#!redefine`, `#!undef`): a bare NAME as a modparam
  argument is replaced when VALUE is one quoted string or one integer; a NAME inside a string is
  never replaced (OpenSIPS does not do that either). A NAME this file does not define that way is
  not carried over.
- `#!ifdef` / `#!ifndef` / `#!else` / `#!endif` are evaluated with this file's own defines, which is
  what OpenSIPS sees when started without defines of its own. A statement in a branch taken is
  carried over with a warning (a define given at start-up would change the branch); one in a branch
  not taken is not carried over. The two branches of one `#!ifdef` are never merged.
- Module names: only `"rtpproxy"`. OpenSIPS reads the name as a regular expression, so
  `"rtpproxy|nathelper"` or `".*"` set the parameter in this module too; a name other than
  `"rtpproxy"` that names it anyway (contains "rtpproxy", or as an anchored regular expression
  matches it) is reported as not carried over: write those parameters in a line of their own.
  Every other module is ignored.
- Kinds: each parameter takes the kind section 1.5 gives it (string or integer); a value of the
  other kind is not carried over. The validator converts: `rtpproxy_timeout` "0.2" -> 0.2,
  `rtpproxy_autobridge` 0/1 -> false/true, `nortpproxy_str` loses its trailing `\\r\\n` (an empty
  string still disables the marker). A parameter set twice keeps the last value, as in OpenSIPS;
  every `rtpproxy_sock` value is kept, in order, one element of the TOML list each.
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

MODULE = "rtpproxy"

#: The module's parameters (reference section 1.5) and the kind of value OpenSIPS takes for each.
#: Every one is an rtppctl key of the same name; rtppctl's own keys (`ledger_ttl`, ...) are not here:
#: a modparam naming one is no parameter of the module.
MODULE_PARAMETER_KINDS: dict[str, type] = {
    "rtpproxy_sock": str,
    "rtpproxy_disable_tout": int,
    "rtpproxy_timeout": str,
    "rtpproxy_autobridge": int,
    "rtpproxy_retr": int,
    "default_set": int,
    "nortpproxy_str": str,
    "db_url": str,
    "db_table": str,
    "rtpp_socket_col": str,
    "set_id_col": str,
    "rtpp_notify_socket": str,
    "generated_sdp_port_min": int,
    "generated_sdp_port_max": int,
    "generated_sdp_media_ip": str,
}

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
    #: Strings: the value with escapes applied; directives: the text after `#!`; others: as written.
    value: str
    line: int
    #: Offsets in the text, for quoting a value as written.
    start: int
    end: int
    #: Strings: the lines a raw line break inside the string led onto (dropped from the value).
    breaks: tuple[int, ...] = ()
    #: Strings: backslash sequences that are no known escape, kept as written.
    unknown_escapes: tuple[str, ...] = ()


class _LexError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "'": "'"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Digits and whatever letters follow them form one token, so "0x1F" is one value to refuse, not two.
_NUMBER = re.compile(r"[0-9][A-Za-z0-9_]*")
_BLANKS = " \t\r\f\v"


def _lex(text: str) -> list[_Token]:
    """Strings, numbers, words, punctuation and `#!` directives, with every comment dropped."""
    tokens: list[_Token] = []
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
        elif char == "#" or text.startswith("//", index):
            end = text.find("\n", index)
            index = length if end < 0 else end
        elif text.startswith("/*", index):
            end = text.find("*/", index + 2)
            if end < 0:
                raise _LexError(line, "a /* comment is never closed with */")
            line += text.count("\n", index, end)
            index = end + 2
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


def _directive_body(text: str, index: int, line: int) -> tuple[str, int, int]:
    """The rest of a `#!` line, continued over lines ending in a backslash; stops at the newline."""
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
        return "\n".join(pieces), end, line


def _string(text: str, index: int, line: int) -> tuple[_Token, int, int]:
    """A quoted string starting at `index`: (token, index after it, line after it)."""
    quote = text[index]
    start, first_line = index, line
    index += 1
    pieces: list[str] = []
    breaks: list[int] = []
    unknown: list[str] = []
    length = len(text)
    while True:
        if index >= length:
            raise _LexError(first_line, f"a string opened with {quote} is never closed")
        char = text[index]
        if char == quote:
            token = _Token("string", "".join(pieces), first_line, start, index + 1, tuple(breaks), tuple(unknown))
            return token, index + 1, line
        if char == "\\" and text.startswith(("\n", "\r\n"), index + 1):
            index += 1  # a backslash before a line break: the break is dropped like any other
            char = text[index]
        if char == "\n" or text.startswith("\r\n", index):
            # See the module docs: the documentation wraps long values inside the quotes.
            index += 2 if char == "\r" else 1
            line += 1
            breaks.append(line)
            while index < length and text[index] in " \t":
                index += 1
            continue
        if char == "\\" and index + 1 < length:
            escaped = text[index + 1]
            if escaped in _ESCAPES:
                pieces.append(_ESCAPES[escaped])
            else:
                pieces.append(char + escaped)
                unknown.append(char + escaped)
            index += 2
            continue
        pieces.append(char)
        index += 1


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
            self.conditions.append(_Condition(keyword, name or "(no name)", token.line, holds))
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
            self.skipped.append(Skipped(line, name if name is not None else _as_written(self.text, name_tokens), exc.reason))

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

            close = difflib.get_close_matches(name, list(MODULE_PARAMETER_KINDS), n=1, cutoff=0.6)
            raise _NotCarried(
                f"not a parameter of the OpenSIPS rtpproxy module" + (f"; did you mean {close[0]}?" if close else "")
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
        if len(tokens) == 1 and tokens[0].kind == "string":
            token = tokens[0]
            if token.breaks:
                later = ", ".join(str(number) for number in token.breaks)
                self._warn(
                    line,
                    f"{name}: the string goes on over a line break (onto line {later}), which OpenSIPS does not allow; "
                    f"read without the break and the indentation after it: {toml_spelling(token.value, None)}",
                )
            for escape in dict.fromkeys(token.unknown_escapes):
                self._warn(line, f"{name}: {escape} is no escape rtppctl knows; kept as written")
            return token.value
        if len(tokens) == 1 and tokens[0].kind == "word":
            word = tokens[0].value
            define = self.defines.get(word)
            if define is None:
                raise _NotCarried(f"{word} is not a #!define of this file (defined elsewhere, or by a preprocessor?)")
            if define.value is None:
                spelled = " ".join(define.text.split()) or "nothing"
                raise _NotCarried(
                    f"{word} is defined as {_shortened(spelled)} (line {define.line}), not as one quoted string or integer"
                )
            return define.value
        number = _integer(tokens)
        if number is not None:
            return number
        raise _NotCarried(
            f"the value {_as_written(self.text, tokens)} is not a quoted string, a decimal integer or a #!define name"
        )

    def _carry_sock(self, line: int, value: str) -> None:
        if not value.strip():
            raise _NotCarried("an empty value (the module ignores it)")
        try:
            config_from_mapping({"rtpproxy_sock": [value]}, self.where).sets()
        except ConfigError as exc:
            raise _NotCarried(self._reason(exc, "rtpproxy_sock")) from None
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
        return error.message.removeprefix(f"{self.where}: ").removeprefix(f"{name}: ")

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


def _integer(tokens: list[_Token]) -> int | None:
    """A decimal integer, optionally signed, from its tokens; None when they are not one."""
    sign = 1
    if len(tokens) == 2 and tokens[0].kind == "punct" and tokens[0].value in "+-":
        sign = -1 if tokens[0].value == "-" else 1
        tokens = tokens[1:]
    if len(tokens) == 1 and tokens[0].kind == "number" and tokens[0].value.isdigit() and tokens[0].value.isascii():
        return sign * int(tokens[0].value)
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
    try:
        tokens = _lex(text)
    except _LexError as exc:
        raise InputError(f"{source}: line {exc.line}: {exc.message}") from None
    reader = _Reader(text, source)
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
