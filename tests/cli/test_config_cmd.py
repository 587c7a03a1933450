"""`rtppctl config init / show / path` through the whole command line."""

from __future__ import annotations

import json

import pytest

from rtppctl.config import EMBEDDED_PARAMETERS, PARAMETERS, load_config, user_config_path
from tests.cli.helpers import cli, cli_process
from tests.conftest import write

# -- init -----------------------------------------------------------------------------------------


def test_init_writes_the_user_file_and_says_where(capsys):
    result = cli(capsys, "config", "init")
    assert result.code == 0, result.stderr
    target = user_config_path()
    assert f"wrote {target}" in result.stdout
    assert load_config(str(target)).rtpproxy_retr == 5


def test_init_to_a_path_with_json(capsys, tmp_path):
    target = tmp_path / "deep" / "rtppctl.toml"
    result = cli(capsys, "config", "init", str(target), "--json")
    assert result.code == 0, result.stderr
    assert json.loads(result.stdout) == {"path": str(target), "written": True}
    assert target.exists()


def test_init_refuses_an_existing_file_unless_forced(capsys, tmp_path):
    target = write(tmp_path / "config.toml", "default_set = 3\n")
    result = cli(capsys, "config", "init", str(target))
    assert result.code == 5
    assert result.stdout == ""
    assert f"{target} already exists" in result.stderr and "--force" in result.stderr
    assert target.read_text() == "default_set = 3\n"
    result = cli(capsys, "config", "init", str(target), "--force")
    assert result.code == 0, result.stderr
    assert load_config(str(target)).default_set == 0


# -- show -----------------------------------------------------------------------------------------


def test_show_json_without_a_file_is_every_default(capsys):
    result = cli(capsys, "config", "show", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["path"] is None
    assert set(data["sources"].values()) == {"default"}
    assert data["settings"]["rtpproxy_sock"] == ["udp:127.0.0.1:22222"]
    assert data["settings"]["rtpproxy_timeout"] == 1.0
    assert data["sets"] == [{"set": 0, "nodes": [{"url": "udp:127.0.0.1:22222", "weight": 1, "advertised": None}]}]


def test_show_json_reports_values_sources_and_parsed_sets(capsys, tmp_path):
    path = write(
        tmp_path / "rtppctl.toml",
        'rtpproxy_sock = ["1 == udp:10.0.0.1:22222 udp:10.0.0.2:22222|203.0.113.9=3", "1 == tcp:10.0.0.3:9000"]\n'
        'rtpproxy_timeout = "0.2"\n'
        "[embedded]\nttl = 30\n",
    )
    result = cli(capsys, "--config", str(path), "config", "show", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["path"] == str(path)
    assert data["settings"]["rtpproxy_timeout"] == 0.2
    assert data["sources"]["rtpproxy_timeout"] == str(path)
    assert data["sources"]["rtpproxy_retr"] == "default"
    assert data["settings"]["embedded"]["ttl"] == 30 and data["sources"]["embedded.ttl"] == str(path)
    assert set(data["sources"]) >= {p.name for p in PARAMETERS}
    # Which keys are the module's and which rtppctl's own.
    assert data["owners"]["rtpproxy_sock"] == data["owners"]["db_url"] == "module"
    assert data["owners"]["state_url"] == data["owners"]["db_mode"] == data["owners"]["ledger_ttl"] == "rtppctl"
    assert data["sets"] == [
        {
            "set": 1,
            "nodes": [
                {"url": "udp:10.0.0.1:22222", "weight": 1, "advertised": None},
                {"url": "udp:10.0.0.2:22222", "weight": 3, "advertised": "203.0.113.9"},
                {"url": "tcp:10.0.0.3:9000", "weight": 1, "advertised": None},
            ],
        }
    ]


def test_show_documents_every_embedded_key_pcap_and_extra_args_included(capsys, tmp_path):
    path = write(tmp_path / "rtppctl.toml", '[embedded]\npcap = true\nextra_args = ["-W", "30"]\n')
    data = cli(capsys, "--config", str(path), "config", "show", "--json").json()
    assert list(data["settings"]["embedded"]) == [p.name for p in EMBEDDED_PARAMETERS]
    assert data["settings"]["embedded"]["pcap"] is True and data["settings"]["embedded"]["extra_args"] == ["-W", "30"]
    assert data["sources"]["embedded.pcap"] == data["sources"]["embedded.extra_args"] == str(path)
    assert data["owners"]["embedded.pcap"] == data["owners"]["embedded.extra_args"] == "rtppctl"
    text = cli(capsys, "--config", str(path), "config", "show").stdout
    assert "embedded.pcap" in text and "embedded.extra_args" in text and '["-W", "30"]' in text


def test_show_as_text_lists_every_key_and_the_relays(capsys, tmp_path):
    path = write(tmp_path / "rtppctl.toml", 'rtpproxy_sock = "udp:10.0.0.1:22222|198.51.100.1=2"\n')
    result = cli(capsys, "--config", str(path), "config", "show")
    assert result.code == 0, result.stderr
    for parameter in PARAMETERS:
        assert parameter.name in result.stdout
    assert "udp:10.0.0.1:22222|198.51.100.1=2" in result.stdout
    assert "198.51.100.1" in result.stdout and "\x1b[" not in result.stdout


def test_show_uses_rtppctl_config_from_the_environment(capsys, tmp_path, monkeypatch):
    path = write(tmp_path / "env.toml", "default_set = 4\n")
    monkeypatch.setenv("RTPPCTL_CONFIG", str(path))
    data = cli(capsys, "config", "show", "--json").json()
    assert data["path"] == str(path) and data["settings"]["default_set"] == 4


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('rtpproxy_retr = "five"\n', 'rtpproxy_retr: expected an integer 1..100, got "five"'),
        ("rtpproxy_socks = []\n", "unknown key 'rtpproxy_socks'; did you mean 'rtpproxy_sock'?"),
        ("rtpproxy_retr = \n", "not valid TOML"),
        ('rtpproxy_sock = "udp:10.0.0.1:22222=heavy"\n', "rtpproxy_sock: node spec"),
    ],
)
def test_show_a_bad_file_exits_5_with_the_message_on_stderr(capsys, tmp_path, text, fragment):
    path = write(tmp_path / "bad.toml", text)
    result = cli(capsys, "--config", str(path), "config", "show", "--json")
    assert result.code == 5
    assert result.stdout == ""
    assert result.stderr.startswith(f"rtppctl: error: {path}: ")
    assert fragment in result.stderr


def test_a_bad_file_through_the_real_entry_point(tmp_path):
    path = write(tmp_path / "bad.toml", "rtpproxy_timeout = 0\n")
    result = cli_process("--config", str(path), "config", "show")
    assert result.code == 5
    assert f"{path}: rtpproxy_timeout: expected a number of seconds from 0.001 to 3600" in result.stderr


# -- path -----------------------------------------------------------------------------------------


def test_path_json_shows_the_lookup_and_the_file_used(capsys, system_config):
    write(system_config, "")
    result = cli(capsys, "config", "path", "--json")
    assert result.code == 0, result.stderr
    data = result.json()
    assert data["path"] == str(system_config)
    assert [(c["origin"], c["exists"], c["used"]) for c in data["lookup"]] == [
        ("user", False, False),
        ("system", True, True),
    ]
    assert data["lookup"][0]["path"] == str(user_config_path())


def test_path_without_any_file(capsys):
    result = cli(capsys, "config", "path")
    assert result.code == 0, result.stderr
    assert "no config file" in result.stdout and str(user_config_path()) in result.stdout


def test_path_prefers_the_environment_and_fails_when_it_names_a_missing_file(capsys, tmp_path, monkeypatch):
    missing = tmp_path / "missing.toml"
    monkeypatch.setenv("RTPPCTL_CONFIG", str(missing))
    result = cli(capsys, "--json", "config", "path")
    assert result.code == 5
    data = result.json()
    assert data["path"] is None
    assert data["lookup"][0] == {
        "origin": "$RTPPCTL_CONFIG", "path": str(missing), "exists": False, "required": True, "used": False,
    }
    assert f"{missing} (from $RTPPCTL_CONFIG) does not exist" in result.stderr


# -- help -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["init", "show", "path"])
def test_every_command_has_help_with_examples(capsys, command):
    result = cli(capsys, "config", command, "--help")
    assert result.code == 0
    assert "Examples:" in result.stdout and f"rtppctl config {command}" in result.stdout
