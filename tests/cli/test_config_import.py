"""`rtppctl config import-opensips` through the whole command line, against a corpus of OpenSIPS configs.

Each `tests/data/opensips/NAME.cfg` has the exact TOML the command prints for it in `NAME.toml` next
to it; the command is run from that directory so the header names the file as given.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tests.cli.helpers import cli, cli_process
from tests.conftest import write

DATA = Path(__file__).resolve().parents[1] / "data" / "opensips"
CORPUS = sorted(DATA.glob("*.cfg"))

GOOD = 'modparam("rtpproxy", "rtpproxy_sock", "1 == udp:10.0.0.1:22222|198.51.100.1=2")\nmodparam("rtpproxy", "rtpproxy_retr", 2)\n'


def test_the_corpus_has_an_expected_toml_for_every_config():
    assert len(CORPUS) >= 5
    for config in CORPUS:
        assert config.with_suffix(".toml").is_file(), config


@pytest.mark.parametrize("config", CORPUS, ids=lambda path: path.stem)
def test_each_config_of_the_corpus_prints_exactly_its_expected_toml(capsys, monkeypatch, config):
    monkeypatch.chdir(DATA)
    result = cli(capsys, "config", "import-opensips", config.name)
    assert result.code == 0, result.stderr
    assert result.stdout == config.with_suffix(".toml").read_text(encoding="utf-8")


@pytest.mark.parametrize("config", CORPUS, ids=lambda path: path.stem)
def test_each_config_of_the_corpus_written_with_o_loads_in_config_show(capsys, tmp_path, config):
    target = tmp_path / "rtppctl.toml"
    result = cli(capsys, "config", "import-opensips", str(config), "-o", str(target), "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert target.read_text(encoding="utf-8") == data["toml"]
    shown = cli(capsys, "--config", str(target), "config", "show", "--json")
    assert shown.code == 0, shown.stderr
    settings = shown.json()["settings"]
    for key, value in data["settings"].items():
        assert settings[key] == value, key
    assert shown.json()["sources"]["rtpproxy_retr"] == (str(target) if "rtpproxy_retr" in data["settings"] else "default")


def test_json_has_the_path_settings_toml_skipped_and_warnings(capsys, tmp_path):
    source = write(tmp_path / "opensips.cfg", GOOD + 'modparam("rtpproxy", "rtpproxy_retry", 2)\n'
                   'modparam("rtpproxy", "rtpproxy_sock", "2 == udp:10.0.0.2:22222\n  udp:10.0.0.3:22222")\n')
    result = cli(capsys, "--json", "config", "import-opensips", str(source))
    assert result.code == 0, result.stderr
    data = result.json()
    assert list(data) == ["path", "settings", "toml", "skipped", "warnings"]
    assert data["path"] is None
    assert data["settings"] == {"rtpproxy_sock": ["1 == udp:10.0.0.1:22222|198.51.100.1=2",
                                                  "2 == udp:10.0.0.2:22222\n  udp:10.0.0.3:22222"], "rtpproxy_retr": 2}
    assert data["toml"].startswith(f"# rtppctl configuration imported from {source} by")
    assert data["skipped"] == [
        {"line": 3, "name": "rtpproxy_retry", "reason": "not a parameter of the OpenSIPS rtpproxy module; did you mean rtpproxy_retr?"},
    ]
    assert len(data["warnings"]) == 1 and data["warnings"][0].startswith("line 4: rtpproxy_sock: the string goes on over a line break")


def test_skipped_statements_and_warnings_go_to_stderr_with_their_lines(capsys, tmp_path):
    source = write(tmp_path / "opensips.cfg", GOOD + '\nmodparam("rtpproxy", "rtpproxy_timeout", 1)\n'
                   'modparam("rtpproxy|nathelper", "rtpproxy_retr", 3)\nmodparam("rtpproxy", "rtpproxy_retr", 4)\n')
    result = cli(capsys, "config", "import-opensips", str(source))
    assert result.code == 0
    assert result.stderr.splitlines() == [
        "rtppctl: warning: line 4: rtpproxy_timeout: the module takes a string here, not the integer 1 (write it in quotes)",
        'rtppctl: warning: line 5: rtpproxy_retr: the module name "rtpproxy|nathelper" is not "rtpproxy" (OpenSIPS reads it '
        'as a regular expression); write it as modparam("rtpproxy", ...) to carry it over',
        "rtppctl: warning: line 6: rtpproxy_retr: set again (also at line 2); the last value counts, as in OpenSIPS",
    ]
    assert "#   line 4: rtpproxy_timeout: the module takes a string here" in result.stdout
    assert "rtpproxy_retr = 4\n" in result.stdout


def test_o_writes_the_file_atomically_and_says_so(capsys, tmp_path):
    source = write(tmp_path / "opensips.cfg", GOOD)
    target = tmp_path / "conf" / "rtppctl.toml"
    target.parent.mkdir()
    result = cli(capsys, "config", "import-opensips", str(source), "-o", str(target))
    assert result.code == 0, result.stderr
    assert result.stdout == f"wrote {target} (2 keys)\n"
    assert os.listdir(target.parent) == ["rtppctl.toml"]  # no temporary file left behind
    # A new file may come to hold db_url's password: only its owner reads it, as with config init.
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    shown = cli(capsys, "--config", str(target), "config", "show", "--json").json()
    assert shown["sets"] == [{"set": 1, "nodes": [{"url": "udp:10.0.0.1:22222", "weight": 2, "advertised": "198.51.100.1"}]}]
    assert shown["settings"]["rtpproxy_retr"] == 2


def test_o_replaces_an_existing_file_keeping_its_mode(capsys, tmp_path):
    source = write(tmp_path / "opensips.cfg", GOOD)
    target = write(tmp_path / "rtppctl.toml", "default_set = 9\n")
    target.chmod(0o640)
    result = cli(capsys, "config", "import-opensips", str(source), "--output", str(target), "--json")
    assert result.code == 0, result.stderr
    assert result.json()["path"] == str(target)
    assert "default_set" not in target.read_text() and stat.S_IMODE(target.stat().st_mode) == 0o640


def test_o_dash_is_stdout(capsys, tmp_path):
    source = write(tmp_path / "opensips.cfg", GOOD)
    result = cli(capsys, "config", "import-opensips", str(source), "-o", "-", "--json")
    assert result.code == 0 and result.json()["path"] is None
    assert result.json()["toml"].endswith('rtpproxy_retr = 2\n')


def test_an_unwritable_target_fails_before_the_input_is_read_and_writes_nothing(capsys, tmp_path):
    missing_input = tmp_path / "nowhere.cfg"
    result = cli(capsys, "config", "import-opensips", str(missing_input), "-o", str(tmp_path / "no" / "such" / "dir.toml"))
    assert result.code == 6
    assert result.stdout == ""
    assert result.stderr.startswith(f"rtppctl: error: cannot write {tmp_path / 'no' / 'such' / 'dir.toml'}: the directory")
    assert not (tmp_path / "no").exists()
    result = cli(capsys, "config", "import-opensips", str(write(tmp_path / "opensips.cfg", GOOD)), "-o", str(tmp_path))
    assert (result.code, result.stdout) == (6, "")
    assert "it is a directory" in result.stderr


def test_the_input_itself_is_never_the_target(capsys, tmp_path):
    source = write(tmp_path / "opensips.cfg", GOOD)
    result = cli(capsys, "config", "import-opensips", str(source), "-o", str(source))
    assert result.code == 6 and "is the OpenSIPS config being read" in result.stderr
    assert source.read_text() == GOOD


def test_a_file_without_rtpproxy_parameters_is_exit_6_naming_it(capsys, tmp_path):
    source = write(tmp_path / "opensips.cfg", 'loadmodule "tm.so"\nmodparam("tm", "fr_timeout", 5)\n')
    target = tmp_path / "rtppctl.toml"
    result = cli(capsys, "config", "import-opensips", str(source), "-o", str(target))
    assert result.code == 6
    assert result.stdout == ""
    assert result.stderr.splitlines()[0] == f'rtppctl: error: no modparam("rtpproxy", ...) in {source}'
    assert not target.exists()


def test_bad_input_is_one_line_naming_file_and_line_and_leaves_the_target_alone(capsys, tmp_path):
    source = write(tmp_path / "work" / "opensips.cfg", GOOD + 'modparam("rtpproxy", "db_url", "mysql://db/opensips)\n')
    target = write(tmp_path / "work" / "rtppctl.toml", "default_set = 9\n")
    result = cli(capsys, "config", "import-opensips", str(source), "-o", str(target))
    assert result.code == 6
    assert result.stdout == ""
    assert result.stderr == f'rtppctl: error: {source}: line 3: a string opened with " is never closed\n'
    assert target.read_text() == "default_set = 9\n"
    assert sorted(os.listdir(tmp_path / "work")) == ["opensips.cfg", "rtppctl.toml"]


def test_input_that_is_not_text_is_exit_6(capsys, tmp_path):
    source = tmp_path / "opensips.cfg"
    source.write_bytes(b'modparam("rtpproxy", "db_table", "caf\xe9")\n')
    result = cli(capsys, "config", "import-opensips", str(source))
    assert result.code == 6 and "not UTF-8" in result.stderr


def test_stdin_through_the_real_entry_point():
    result = cli_process("config", "import-opensips", "-", "--json", input=GOOD)
    assert result.code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["toml"].startswith("# rtppctl configuration imported from stdin by")
    assert data["settings"]["rtpproxy_retr"] == 2


def test_the_import_needs_no_usable_config_of_its_own(capsys, tmp_path):
    # The file being imported is often the first config there is; a broken one in place must not matter.
    broken = write(tmp_path / "broken.toml", "rtpproxy_retr = \n")
    source = write(tmp_path / "opensips.cfg", GOOD)
    result = cli(capsys, "--config", str(broken), "config", "import-opensips", str(source))
    assert result.code == 0, result.stderr


def test_the_cfg_lex_corpus_reports_line_breaks_octal_numbers_and_junk_words(capsys, monkeypatch):
    monkeypatch.chdir(DATA)
    result = cli(capsys, "config", "import-opensips", "07_cfg_lex.cfg")
    assert result.code == 0
    assert result.stderr.splitlines() == [
        "rtppctl: warning: line 8: rtpproxy_sock: the string goes on over a line break (onto line 9); OpenSIPS keeps the "
        'break in the value (cfg.lex), and the module splits relays at it as at any blank: "1 == udp:10.4.0.1:22222\\n    '
        'udp:10.4.0.2:22222=2"',
        "rtppctl: warning: line 29: rtpproxy_retr: 010 is octal to OpenSIPS (cfg.lex OCTNUMBER): read as 8",
        "rtppctl: warning: line 32: rtpproxy_sock: ';', 'DROP', '--' do not look like a socket path; the module reads a "
        "word without a scheme as a unix socket in its working directory (write unix:NAME or ./NAME if that is meant)",
    ]
    # The two relays of the string with a line break are two relays, not one glued spec.
    shown = cli(capsys, "--config", str(DATA / "07_cfg_lex.toml"), "--json", "config", "show")
    sets = {entry["set"]: [node["url"] for node in entry["nodes"]] for entry in shown.json()["sets"]}
    assert sets[1] == ["udp:10.4.0.1:22222", "udp:10.4.0.2:22222"] and sets[4] == ["udp:10.4.0.7:22222", ";", "DROP", "--"]
