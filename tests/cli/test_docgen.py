"""The generated completions and man page: current, complete, valid, and working in a real shell.

The committed files under completions/ and man/ must be exactly what docgen renders from today's
command tree; everything else here checks that what it renders is right: every command and option
is in every output, the scripts parse in their shells, the man page renders without warnings, and
bash really completes. A small app built here checks the renderers on cases the real app may not
have yet (choices, hidden commands, on/off flags, namesakes, text that needs escaping).
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from enum import Enum
from pathlib import Path
from typing import Annotated

import pytest
import typer

from tools import docgen
from rtppctl.proto.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]
BASH = ROOT / "completions" / "rtppctl.bash"
ZSH = ROOT / "completions" / "_rtppctl"
FISH = ROOT / "completions" / "rtppctl.fish"
MAN = ROOT / "man" / "rtppctl.1"


@pytest.fixture(scope="module")
def model() -> docgen.CommandDoc:
    return docgen.build_model()


@pytest.fixture(scope="module")
def outputs(model) -> dict[Path, str]:
    return docgen.generate(ROOT, model)


def _man_section(man: str, heading: str) -> str:
    """The roff source from `heading` (an .SH or .SS line) to the next heading."""
    start = man.index(heading + "\n")
    following = re.search(r"^\.S[HS] ", man[start + len(heading) :], re.MULTILINE)
    return man[start : start + len(heading) + (following.start() if following else len(man))]


def _bash_block(script: str, path: str) -> str:
    """The `_rtppctl_spec` case branch of one command path."""
    start = script.index(f"        '{path}')\n")
    return script[start : script.index(";;", start)]


def _complete_bash(script: Path, *words: str, cwd: Path | None = None) -> list[str]:
    """Run `_rtppctl` in a real bash for the command line `words` (the last one being completed)."""
    quoted = " ".join(docgen._sq(word) for word in words)
    program = (
        f"source {docgen._sq(str(script))}\n"
        f"COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}\n"
        '_rtppctl; printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    result = subprocess.run(["bash", "--norc", "-c", program], capture_output=True, text=True, cwd=cwd, check=True)
    return [line for line in result.stdout.splitlines() if line]


# --------------------------------------------------------------------------------------------
# The committed files are current
# --------------------------------------------------------------------------------------------


def test_committed_files_equal_what_the_app_generates(outputs):
    stale = []
    for path, content in outputs.items():
        current = path.read_bytes().decode("utf-8") if path.exists() else None
        if current != content:
            stale.append(str(path.relative_to(ROOT)))
    assert not stale, f"out of date: {', '.join(stale)}; run `python scripts/gen_docs.py` and commit the result"


def test_generation_is_deterministic_and_ignores_the_environment(outputs, monkeypatch):
    # Width, colour and locale change what --help looks like; they must not change the files.
    monkeypatch.setenv("COLUMNS", "20")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TERM", "dumb")
    monkeypatch.setenv("LANG", "C")
    assert docgen.generate(ROOT) == outputs


def test_gen_docs_check_reports_stale_files_and_rewrites_them(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    gen_docs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_docs)
    gen_docs.ROOT = tmp_path

    assert gen_docs.main(["--check"]) == 1
    err = capsys.readouterr().err
    for relative, _ in docgen.OUTPUTS:
        assert relative in err
    assert not (tmp_path / "man").exists(), "--check must not write"

    assert gen_docs.main([]) == 0
    assert gen_docs.main(["--check"]) == 0
    (tmp_path / "man" / "rtppctl.1").write_text("stale\n")
    assert gen_docs.main(["--check"]) == 1
    assert "man/rtppctl.1" in capsys.readouterr().err


def test_gen_docs_check_passes_on_the_repository():
    result = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else "python", "scripts/gen_docs.py", "--check"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------
# Everything is documented everywhere
# --------------------------------------------------------------------------------------------


def test_every_command_path_is_in_all_four_outputs(model, outputs):
    bash, zsh, fish, man = (outputs[ROOT / relative] for relative, _ in docgen.OUTPUTS)
    man_plain = man.replace("\\-", "-")
    paths = [cmd for cmd in model.walk()]
    assert len(paths) > 1, "the tree has no commands"
    for cmd in paths:
        assert f"        '{cmd.full_name}')\n" in bash, cmd.full_name
        assert f"{docgen._identifier(cmd.path)}() {{" in zsh, cmd.full_name
        assert f"\n# {cmd.full_name}\n" in fish, cmd.full_name
        if cmd is not model:
            assert f'.SS "{cmd.full_name}"' in man_plain, cmd.full_name
    for parent in paths:
        for sub in parent.subcommands:
            assert sub.name in _bash_block(bash, parent.full_name).split("subs='")[1].split("'")[0].split()
            assert f"    '{sub.name}:" in zsh
            assert re.search(rf"^complete -c rtppctl -n '[^']*' -a {re.escape(sub.name)} -d ", fish, re.MULTILINE)


def test_every_option_is_in_the_man_page_and_the_bash_script(model, outputs):
    bash, man = outputs[BASH], outputs[MAN]
    global_options = _man_section(man, ".SH GLOBAL OPTIONS")
    for cmd in model.walk():
        block = _bash_block(bash, cmd.full_name)
        offered = block.split("opts='")[1].split("'")[0].split() if "opts='" in block else []
        section = global_options if cmd is model else _man_section(man, f'.SS "{docgen._roff_code(cmd.full_name)}"')
        for opt in cmd.options:
            for spelling in opt.spellings:
                assert spelling in offered, f"bash: {cmd.full_name} {spelling}"
                # -h/--help is documented once, with the global options.
                where = global_options if opt.is_help else section
                assert f"\\fB{docgen._roff_code(spelling)}\\fR" in where, f"man: {cmd.full_name} {spelling}"
            if opt.takes_value:
                valued = block.split("valued='")[1].split("'")[0].split()
                assert set(opt.names) <= set(valued), f"bash: {cmd.full_name} {opt.names} take a value"


def test_raw_is_documented_with_all_its_options(model, outputs):
    raw = next((cmd for cmd in model.walk() if cmd.path == ("rtppctl", "raw")), None)
    assert raw is not None
    assert {"--target", "--file"} <= {s for opt in raw.options for s in opt.spellings}
    section = _man_section(outputs[MAN], '.SS "rtppctl raw"')
    assert "\\fB\\-\\-file\\fR \\fIFILE\\fR" in section


def test_every_exit_code_has_a_meaning_in_the_man_page(outputs):
    from rtppctl.proto.errors import EXIT_MEANINGS

    assert set(EXIT_MEANINGS) == set(ExitCode), "every exit code has one meaning, and only exit codes do"
    section = _man_section(outputs[MAN], ".SH EXIT STATUS")
    for code in ExitCode:
        assert f"\n.B {int(code)}\n" in section or f".B {int(code)}" in section


def test_the_readme_exit_code_table_is_the_one_in_errors():
    from rtppctl.proto.errors import EXIT_MEANINGS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", readme, re.MULTILINE))
    assert rows == {str(int(code)): meaning for code, meaning in EXIT_MEANINGS.items()}


def test_json_is_one_global_option_and_no_command_declares_its_own(model):
    root_spellings = {s for opt in model.options for s in opt.spellings}
    assert "--json" in root_spellings
    for command in model.walk():
        if command.path != ("rtppctl",):
            assert "--json" not in {s for opt in command.options for s in opt.spellings}, command.path


def test_man_page_documents_environment_and_files(outputs):
    man = outputs[MAN]
    environment = _man_section(man, ".SH ENVIRONMENT")
    for name in ("RTPPCTL_CONFIG", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "NO_COLOR"):
        assert f".B {name}\n" in environment
    files = _man_section(man, ".SH FILES")
    assert "config.toml" in files


def test_man_page_has_the_version_and_no_date(outputs):
    from rtppctl import __version__

    th = next(line for line in outputs[MAN].splitlines() if line.startswith(".TH "))
    assert th == f'.TH RTPPCTL 1 "" "rtppctl {__version__}" "User Commands"'


def test_every_command_has_help_with_examples(model):
    # House rule: every command is documented with examples. Groups only gather commands.
    lacking = [
        cmd.full_name
        for cmd in model.walk()
        if (cmd is model or not cmd.is_group) and "Example" not in cmd.help
    ]
    assert not lacking, f"commands without help examples: {lacking}"


# --------------------------------------------------------------------------------------------
# The outputs are valid for their tools
# --------------------------------------------------------------------------------------------


def test_scripts_parse_in_their_shells():
    result = subprocess.run(["bash", "-n", str(BASH)], check=False, capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr, result.stderr
    # zsh and fish are checked where they are installed (they are in the dev container).
    if shutil.which("zsh"):
        result = subprocess.run(["zsh", "-n", str(ZSH)], check=False, capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, result.stderr
    if shutil.which("fish"):
        result = subprocess.run(["fish", "--no-execute", str(FISH)], check=False, capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, result.stderr


def test_man_page_renders_without_warnings(outputs):
    man = outputs[MAN]
    if shutil.which("groff"):
        result = subprocess.run(
            ["groff", "-man", "-Tutf8", "-ww", "-z", str(MAN)], check=False, capture_output=True, text=True
        )
        assert result.returncode == 0 and not result.stderr, result.stderr
    else:
        for macro in (".TH ", ".SH NAME", ".SH SYNOPSIS", ".SH COMMANDS", ".SH EXIT STATUS"):
            assert f"\n{macro}" in man
    # Whatever renders it: only ASCII, and no line a formatter would take for a request by accident.
    assert man.isascii()
    for line in man.splitlines():
        assert line, "blank lines are paragraph breaks in roff; use .PP"
        if line[0] in ".'":
            assert re.match(r"^(\.\\\"|\.[A-Z]{1,2}\b|\.(nf|fi|sp|br|ad|nh)\b)", line), line


# --------------------------------------------------------------------------------------------
# Real completion runs
# --------------------------------------------------------------------------------------------


def test_bash_completes_commands_options_and_files(model, tmp_path):
    assert "config" in _complete_bash(BASH, "rtppctl", "con")
    assert "--target" in _complete_bash(BASH, "rtppctl", "raw", "--ta")
    assert set(_complete_bash(BASH, "rtppctl", "")) == {sub.name for sub in model.subcommands}
    # Global options at the root, a command's own options after it.
    root_options = {s for opt in model.options for s in opt.spellings}
    assert set(_complete_bash(BASH, "rtppctl", "-")) == root_options
    # Options with a value are skipped while finding the command: "--config x.toml" is not a command.
    assert "config" in _complete_bash(BASH, "rtppctl", "--config", "x.toml", "con")
    # Values named FILE complete to files; the option may be spelled --opt=value.
    (tmp_path / "batch.txt").write_text("V\n")
    (tmp_path / "sub").mkdir()
    file_options = [(cmd, opt) for cmd in model.walk() for opt in cmd.options if opt.completes == "file"]
    assert file_options, "no option takes a FILE"
    for cmd, opt in file_options:
        words = [*cmd.path, opt.names[-1], "b"]
        assert _complete_bash(BASH, *words, cwd=tmp_path) == ["batch.txt"], words
        assert _complete_bash(BASH, *cmd.path, opt.names[-1], "=", "b", cwd=tmp_path) == ["batch.txt"]
    # Nothing specific for other values: a SPEC is not a file name.
    assert _complete_bash(BASH, "rtppctl", "raw", "--target", "", cwd=tmp_path) == []


# Defined only where fish is installed: a skipped test would read as checked when it was not.
if shutil.which("fish"):

    def test_fish_completes_commands_and_options():
        def complete(line: str) -> list[str]:
            program = f"source {docgen._fish_quote(str(FISH))}; complete -C {docgen._fish_quote(line)}"
            result = subprocess.run(["fish", "--no-config", "-c", program], capture_output=True, text=True, check=True)
            return [row.split("\t")[0] for row in result.stdout.splitlines()]

        assert "config" in complete("rtppctl con")
        assert "--target" in complete("rtppctl raw --ta")
        assert "--target" not in complete("rtppctl --ta")


# --------------------------------------------------------------------------------------------
# The renderers, on a small app with the awkward cases
# --------------------------------------------------------------------------------------------


class _Mode(str, Enum):
    FAST = "fast"
    SAFE = "safe"


def _sample_app() -> typer.Typer:
    app = typer.Typer(
        name="rtppctl",
        help="Sample root.\n\nExamples:\n\n  rtppctl go --mode safe",
        context_settings={"help_option_names": ["-h", "--help"]},
    )

    @app.callback()
    def root(
        color: Annotated[bool, typer.Option("--color/--no-color", help="Colour.")] = True,
        config: Annotated[str | None, typer.Option("--config", metavar="FILE", help="Config file.")] = None,
    ) -> None:
        pass

    @app.command()
    def go(
        mode: Annotated[_Mode, typer.Option("--mode", "-m", help="How: [bold]fast[/bold] or safe.")] = _Mode.FAST,
        out: Annotated[Path | None, typer.Argument(help="Where.", file_okay=False)] = None,
        secret: Annotated[bool, typer.Option("--secret", hidden=True)] = False,
    ) -> None:
        """Go somewhere.

        A backslash \\ and a leading dot:

        .profile is a file

        Examples:

          rtppctl go --mode safe /tmp
        """

    @app.command(hidden=True)
    def ghost() -> None:
        """Never documented."""

    sub = typer.Typer()

    @sub.command("go")
    def nested_go() -> None:
        """A namesake of the top-level go.

        Example:

          rtppctl nest go
        """

    app.add_typer(sub, name="nest", help="A group.")
    return app


@pytest.fixture(scope="module")
def sample() -> docgen.CommandDoc:
    return docgen.build_model(typer.main.get_command(_sample_app()))


def test_model_reads_choices_flags_arguments_and_skips_hidden(sample):
    assert [cmd.full_name for cmd in sample.walk()] == ["rtppctl", "rtppctl go", "rtppctl nest", "rtppctl nest go"]
    go = sample.subcommands[0]
    mode = go.options[0]
    assert mode.names == ("-m", "--mode") and mode.choices == ("fast", "safe") and mode.takes_value
    assert mode.help == "How: fast or safe."  # Rich markup is gone, as in --help
    assert [opt.names for opt in go.options] == [("-m", "--mode"), ("-h", "--help")]  # --secret is hidden
    assert go.arguments[0].completes == "dir" and go.arguments[0].synopsis == "[OUT]"
    color = sample.options[0]
    assert color.negations == ("--no-color",) and not color.takes_value
    assert sample.options[1].completes == "file"


def test_man_page_escapes_roff(sample):
    man = docgen.man_page(sample)
    assert "A backslash \\e and a leading dot:" in man
    assert "\n\\&.profile is a file\n" in man
    assert "\n.nf\nrtppctl go \\-\\-mode safe /tmp\n.fi\n" in man
    assert "\\fB\\-\\-no\\-color\\fR" in man
    assert "ghost" not in man and "secret" not in man
    assert docgen._roff_prose("use --target, not -t; well-known") == "use \\-\\-target, not \\-t; well-known"
    assert docgen._roff_prose("'quoted") == "\\&'quoted"
    assert docgen._roff_prose("caf\u00e9") == "caf\\[u00E9]"


def test_sample_completions_offer_choices_and_tell_namesakes_apart(sample, tmp_path):
    script = tmp_path / "rtppctl.bash"
    script.write_text(docgen.bash_completion(sample))
    assert _complete_bash(script, "rtppctl", "go", "--mode", "") == ["fast", "safe"]
    assert _complete_bash(script, "rtppctl", "go", "-m", "s") == ["safe"]
    assert _complete_bash(script, "rtppctl", "--no") == ["--no-color"]
    assert _complete_bash(script, "rtppctl", "nest", "") == ["go"]
    assert "ghost" not in script.read_text()
    fish = docgen.fish_completion(sample)
    # The top-level go is not "seen" inside nest, and nest go needs both words.
    assert "complete -c rtppctl -n '__fish_seen_subcommand_from go; and not __fish_seen_subcommand_from nest'" in fish
    assert "complete -c rtppctl -n '__fish_seen_subcommand_from nest; and __fish_seen_subcommand_from go'" in fish
    assert "-s m -l mode -r -f -a 'fast safe'" in fish
    zsh = docgen.zsh_completion(sample)
    assert "'(-m --mode)--mode=[How\\: fast or safe.]:[fast|safe]:(fast safe)'" in zsh
    assert "'::Where.:_files -/'" in zsh


def test_names_that_cannot_be_quoted_safely_are_refused():
    app = typer.Typer()

    @app.command("bad;name")
    def bad() -> None:
        """Bad."""

    @app.command("fine")
    def fine() -> None:
        """Fine."""

    model = docgen.build_model(typer.main.get_command(app))
    with pytest.raises(ValueError, match="bad;name"):
        docgen.bash_completion(model)
