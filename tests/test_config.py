"""The config file: lookup order, every key checked with messages naming file and key, sets, starter file."""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

import pytest

from rtppctl.config import (
    EMBEDDED_PARAMETERS,
    PARAMETERS,
    Config,
    config_candidates,
    find_config,
    load_config,
    starter_config_text,
    user_config_path,
    write_starter_config,
)
from rtppctl.embedded import EmbeddedOptions
from rtppctl.proto.errors import ConfigError, ExitCode
from tests.conftest import write


def load_text(tmp_path: Path, text: str) -> Config:
    return load_config(str(write(tmp_path / "config.toml", text)))


def config_error(tmp_path: Path, text: str) -> tuple[str, ConfigError]:
    path = write(tmp_path / "config.toml", text)
    with pytest.raises(ConfigError) as info:
        load_config(str(path))
    assert info.value.exit_code == ExitCode.CONFIG
    return str(path), info.value


# -- lookup ---------------------------------------------------------------------------------------


def test_no_file_anywhere_gives_every_default(system_config):
    config = load_config()
    assert config == Config()
    assert config.path is None
    assert config.sources == {
        **{p.name: "default" for p in PARAMETERS}, **{f"embedded.{p.name}": "default" for p in EMBEDDED_PARAMETERS},
    }
    assert config.rtpproxy_sock == ("udp:127.0.0.1:22222",)
    assert (config.rtpproxy_disable_tout, config.rtpproxy_timeout, config.rtpproxy_retr) == (60, 1.0, 5)
    assert (config.rtpproxy_autobridge, config.default_set, config.nortpproxy_str) == (False, 0, "a=nortpproxy:yes")
    assert (config.db_url, config.db_table, config.rtpp_socket_col, config.set_id_col) == (
        None, "rtpproxy_sockets", "rtpproxy_sock", "set_id",
    )
    assert config.rtpp_notify_socket is None
    assert (config.generated_sdp_port_min, config.generated_sdp_port_max) == (35000, 65000)
    assert config.generated_sdp_media_ip == "127.0.0.1"
    assert config.embedded == EmbeddedOptions()


def test_lookup_order_explicit_then_env_then_user_then_system(tmp_path, system_config, monkeypatch):
    explicit = write(tmp_path / "explicit.toml", "rtpproxy_retr = 1\n")
    from_env = write(tmp_path / "env.toml", "rtpproxy_retr = 2\n")
    user = write(user_config_path(), "rtpproxy_retr = 3\n")
    write(system_config, "rtpproxy_retr = 4\n")
    monkeypatch.setenv("RTPPCTL_CONFIG", str(from_env))

    assert load_config(str(explicit)).rtpproxy_retr == 1
    assert load_config().rtpproxy_retr == 2
    assert load_config().path == from_env
    monkeypatch.delenv("RTPPCTL_CONFIG")
    assert load_config().rtpproxy_retr == 3
    user.unlink()
    config = load_config()
    assert config.rtpproxy_retr == 4 and config.path == system_config
    assert config.source("rtpproxy_retr") == str(system_config)
    assert config.source("rtpproxy_timeout") == "default"


def test_env_mapping_can_be_passed_explicitly(tmp_path, system_config):
    path = write(tmp_path / "elsewhere.toml", "default_set = 7\n")
    assert load_config(env={"RTPPCTL_CONFIG": str(path)}).default_set == 7
    home = tmp_path / "xdg-other"
    write(home / "rtppctl" / "config.toml", "default_set = 8\n")
    assert load_config(env={"XDG_CONFIG_HOME": str(home)}).default_set == 8


def test_user_path_follows_xdg_and_ignores_a_relative_one(tmp_path):
    assert user_config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "rtppctl" / "config.toml"
    assert user_config_path({"XDG_CONFIG_HOME": "relative"}) == Path.home() / ".config" / "rtppctl" / "config.toml"
    assert user_config_path({}) == Path.home() / ".config" / "rtppctl" / "config.toml"


@pytest.mark.parametrize("origin", ["--config", "$RTPPCTL_CONFIG"])
def test_a_named_file_that_does_not_exist_is_an_error(tmp_path, system_config, monkeypatch, origin):
    missing = tmp_path / "nope.toml"
    write(user_config_path(), "rtpproxy_retr = 3\n")  # must not be used instead
    explicit = None
    if origin == "--config":
        explicit = str(missing)
    else:
        monkeypatch.setenv("RTPPCTL_CONFIG", str(missing))
    with pytest.raises(ConfigError) as info:
        load_config(explicit)
    assert str(missing) in info.value.message and origin in info.value.message
    assert "does not exist" in info.value.message
    assert "rtppctl config init" in info.value.hint


def test_candidates_list_the_order_and_which_exist(tmp_path, system_config, monkeypatch):
    write(system_config, "")
    monkeypatch.setenv("RTPPCTL_CONFIG", str(tmp_path / "env.toml"))
    candidates = config_candidates(str(tmp_path / "cli.toml"))
    assert [c.origin for c in candidates] == ["--config", "$RTPPCTL_CONFIG", "user", "system"]
    assert [c.exists for c in candidates] == [False, False, False, True]
    assert [c.required for c in candidates] == [True, True, False, False]
    monkeypatch.delenv("RTPPCTL_CONFIG")
    assert find_config() == system_config


def test_an_empty_file_is_all_defaults_from_that_file(tmp_path):
    config = load_text(tmp_path, "# nothing yet\n")
    assert config == Config(path=tmp_path / "config.toml")
    assert config.source("rtpproxy_sock") == "default"


# -- keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        ('rtpproxy_sock = "udp:10.0.0.5:22222"', "rtpproxy_sock", ("udp:10.0.0.5:22222",)),
        ('rtpproxy_sock = ["1 == udp:a:1", "2 == udp:b:2"]', "rtpproxy_sock", ("1 == udp:a:1", "2 == udp:b:2")),
        ("rtpproxy_disable_tout = 20", "rtpproxy_disable_tout", 20),
        ("rtpproxy_disable_tout = 0", "rtpproxy_disable_tout", 0),
        # The module takes any int; below 0 a disabled relay is probed again on every call (§2.2).
        ("rtpproxy_disable_tout = -1", "rtpproxy_disable_tout", -1),
        ("rtpproxy_disable_tout = -31536000", "rtpproxy_disable_tout", -31536000),
        ('rtpproxy_timeout = "0.2"', "rtpproxy_timeout", 0.2),
        ("rtpproxy_timeout = 0.5", "rtpproxy_timeout", 0.5),
        ("rtpproxy_timeout = 2", "rtpproxy_timeout", 2.0),
        ("rtpproxy_autobridge = 1", "rtpproxy_autobridge", True),
        ("rtpproxy_autobridge = true", "rtpproxy_autobridge", True),
        ("rtpproxy_autobridge = 0", "rtpproxy_autobridge", False),
        ("rtpproxy_retr = 2", "rtpproxy_retr", 2),
        ("default_set = 1", "default_set", 1),
        ('nortpproxy_str = "a=sdpmangled:yes\\r\\n"', "nortpproxy_str", "a=sdpmangled:yes"),
        ("nortpproxy_str = 'a=sdpmangled:yes\\r\\n'", "nortpproxy_str", "a=sdpmangled:yes"),
        ('nortpproxy_str = "a=sdpmangled:yes"', "nortpproxy_str", "a=sdpmangled:yes"),
        ('nortpproxy_str = ""', "nortpproxy_str", ""),
        ('db_url = "postgresql://u:p@db/opensips"', "db_url", "postgresql://u:p@db/opensips"),
        ('db_table = "nh_sockets"', "db_table", "nh_sockets"),
        ('db_table = "public.nh_sockets"', "db_table", "public.nh_sockets"),
        ('rtpp_socket_col = "rtpp_socket"', "rtpp_socket_col", "rtpp_socket"),
        ('set_id_col = "rtpp_set_id"', "set_id_col", "rtpp_set_id"),
        ('rtpp_notify_socket = "tcp:10.10.10.10:9999"', "rtpp_notify_socket", "tcp:10.10.10.10:9999"),
        ('rtpp_notify_socket = "unix:/tmp/rtpproxy.unix"', "rtpp_notify_socket", "unix:/tmp/rtpproxy.unix"),
        ('rtpp_notify_socket = "/tmp/rtpproxy.unix"', "rtpp_notify_socket", "/tmp/rtpproxy.unix"),
        ("generated_sdp_port_min = 10000", "generated_sdp_port_min", 10000),
        ("generated_sdp_port_max = 50000", "generated_sdp_port_max", 50000),
        ('generated_sdp_media_ip = "10.0.0.1"', "generated_sdp_media_ip", "10.0.0.1"),
        ('generated_sdp_media_ip = "2001:db8::1"', "generated_sdp_media_ip", "2001:db8::1"),
    ],
)
def test_every_key_reads_as_the_module_takes_it(tmp_path, text, key, value):
    config = load_text(tmp_path, text + "\n")
    assert getattr(config, key) == value
    assert config.source(key) == str(tmp_path / "config.toml")


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("rtpproxy_sock = 5", "rtpproxy_sock", "a string or a list of strings"),
        ('rtpproxy_sock = ["udp:a:1", 2]', "rtpproxy_sock", "a string or a list of strings"),
        ("rtpproxy_disable_tout = -31536001", "rtpproxy_disable_tout", "an integer -31536000..31536000"),
        ("rtpproxy_disable_tout = 31536001", "rtpproxy_disable_tout", "an integer -31536000..31536000"),
        ('rtpproxy_disable_tout = "60"', "rtpproxy_disable_tout", "an integer -31536000.."),
        ("rtpproxy_timeout = 0", "rtpproxy_timeout", "a number of seconds from 0.001 to 3600"),
        ('rtpproxy_timeout = "soon"', "rtpproxy_timeout", "a number of seconds from 0.001 to 3600"),
        ("rtpproxy_timeout = true", "rtpproxy_timeout", "a number of seconds from 0.001 to 3600"),
        ("rtpproxy_timeout = nan", "rtpproxy_timeout", "a number of seconds from 0.001 to 3600"),
        ("rtpproxy_autobridge = 2", "rtpproxy_autobridge", "true or false (or 0 or 1)"),
        ('rtpproxy_autobridge = "yes"', "rtpproxy_autobridge", "true or false (or 0 or 1)"),
        ("rtpproxy_retr = 0", "rtpproxy_retr", "an integer 1..100"),
        ("rtpproxy_retr = true", "rtpproxy_retr", "an integer 1..100"),
        ("rtpproxy_retr = 1.5", "rtpproxy_retr", "an integer 1..100"),
        ("default_set = -1", "default_set", "an integer 0.."),
        ("nortpproxy_str = 1", "nortpproxy_str", "a string"),
        ('nortpproxy_str = "a=x\\r\\na=y"', "nortpproxy_str", "one SDP line"),
        ('db_url = ""', "db_url", "a non-empty string"),
        ('db_table = "x; drop table y"', "db_table", "a table name"),
        ('rtpp_socket_col = "a b"', "rtpp_socket_col", "a column name"),
        ('set_id_col = ""', "set_id_col", "a column name"),
        ('rtpp_notify_socket = "tcp:notify.example.net:9999"', "rtpp_notify_socket", "tcp:IPv4:PORT"),
        ('rtpp_notify_socket = "tcp:10.0.0.1"', "rtpp_notify_socket", "tcp:IPv4:PORT"),
        ('rtpp_notify_socket = "tcp:10.0.0.1:70000"', "rtpp_notify_socket", "tcp:IPv4:PORT"),
        ('rtpp_notify_socket = "relative.sock"', "rtpp_notify_socket", "tcp:IPv4:PORT"),
        ('rtpp_notify_socket = "/tmp/a b"', "rtpp_notify_socket", "tcp:IPv4:PORT"),
        ("generated_sdp_port_min = 0", "generated_sdp_port_min", "an integer 1..65535"),
        ("generated_sdp_port_max = 70000", "generated_sdp_port_max", "an integer 1..65535"),
        ('generated_sdp_media_ip = "media.example.net"', "generated_sdp_media_ip", "an IPv4 or IPv6 address"),
    ],
)
def test_bad_values_name_the_file_the_key_and_what_was_expected(tmp_path, text, key, expected):
    path, error = config_error(tmp_path, text + "\n")
    assert error.message.startswith(f"{path}: {key}: expected {expected}")
    assert ", got " in error.message


def test_the_message_quotes_the_value_as_written(tmp_path):
    path, error = config_error(tmp_path, 'rtpproxy_retr = "five"\n')
    assert error.message == f'{path}: rtpproxy_retr: expected an integer 1..100, got "five"'


def test_a_reversed_generated_sdp_range_is_swapped_as_the_module_does(tmp_path):
    config = load_text(tmp_path, "generated_sdp_port_min = 40000\ngenerated_sdp_port_max = 30000\n")
    assert (config.generated_sdp_port_min, config.generated_sdp_port_max) == (30000, 40000)


def test_db_url_without_sockets_means_no_file_sets(tmp_path):
    config = load_text(tmp_path, 'db_url = "sqlite:///var/lib/relays.db"\n')
    assert config.rtpproxy_sock == () and config.sets() == {}


def test_an_empty_socket_list_falls_back_to_the_embedded_relay(tmp_path):
    config = load_text(tmp_path, 'rtpproxy_sock = ["", "  "]\n')
    assert config.rtpproxy_sock == ("udp:127.0.0.1:22222",)
    assert config.source("rtpproxy_sock") == "default"


# -- unknown keys and broken files -----------------------------------------------------------------


def test_unknown_key_suggests_the_closest_known_one(tmp_path):
    path, error = config_error(tmp_path, 'rtpproxy_socks = ["udp:a:1"]\n')
    assert error.message == f"{path}: unknown key 'rtpproxy_socks'; did you mean 'rtpproxy_sock'?"
    _, error = config_error(tmp_path, "rtpproxy_retry = 2\n")
    assert "did you mean 'rtpproxy_retr'?" in error.message


def test_unknown_key_without_a_close_match_points_to_the_module_names(tmp_path):
    path, error = config_error(tmp_path, 'colour = "blue"\n')
    assert error.message == f"{path}: unknown key 'colour'"
    assert "parameter names" in error.hint


def test_module_keys_inside_a_table_are_told_to_move_to_the_top(tmp_path):
    path, error = config_error(tmp_path, "[rtpproxy]\nrtpproxy_retr = 2\n")
    assert error.message.startswith(f"{path}: [rtpproxy]: the module's parameters go at the top level")


def test_toml_syntax_error_names_the_line(tmp_path):
    path, error = config_error(tmp_path, "rtpproxy_retr = 2\n\ndefault_set = = 1\n")
    assert error.message.startswith(f"{path}: not valid TOML: ")
    assert "line 3" in error.message


def test_a_file_that_is_not_utf8_is_an_error(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b'nortpproxy_str = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(str(path))


def test_a_directory_is_not_a_config_file(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(str(tmp_path))


# -- the [embedded] table ------------------------------------------------------------------------


def test_embedded_table_sets_the_start_defaults(tmp_path):
    config = load_text(
        tmp_path,
        "[embedded]\n"
        'control = ["udp:127.0.0.1:23000", "tcp:127.0.0.1:23001"]\n'
        'listen = "127.0.0.2"\nport_min = 40000\nport_max = 41000\n'
        'notify = "tcp:127.0.0.1:9999"\nrecord_dir = "/tmp"\nttl = 30\nsetup_ttl = 10\n',
    )
    assert config.embedded == EmbeddedOptions(
        control=["udp:127.0.0.1:23000", "tcp:127.0.0.1:23001"], listen="127.0.0.2", port_min=40000,
        port_max=41000, notify=["tcp:127.0.0.1:9999"], record_dir="/tmp", ttl=30, setup_ttl=10,
    )
    assert config.source("embedded.ttl") == str(tmp_path / "config.toml")
    assert config.source("embedded.pcap") == "default"


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[embedded]\nport = 1\n", "unknown key 'embedded.port'; did you mean 'embedded.port_min'?"),
        ("[embedded]\nttl = 0\n", "embedded.ttl: expected an integer 1..2147483647, got 0"),
        ("[embedded]\ncontrol = []\n", "embedded.control: expected a string or a list of strings"),
        ('[embedded]\ncontrol = ["bogus:1"]\n', "embedded.control: expected control sockets (node spec 'bogus:1'"),
        ('[embedded]\ncontrol = ["udp:127.0.0.1:1=2"]\n', "embedded.control: expected control sockets without"),
        ('[embedded]\nlisten = "a b"\n', "embedded.listen: expected a non-empty string without spaces"),
        ("[embedded]\nport_min = 5000\nport_max = 4000\n", "embedded.port_min (5000) must be below embedded.port_max (4000)"),
        ("embedded = 1\n", "embedded: expected a table ([embedded]), got 1"),
    ],
)
def test_embedded_table_errors(tmp_path, text, fragment):
    path, error = config_error(tmp_path, text)
    assert error.message.startswith(f"{path}: ")
    assert fragment in error.message


# -- sets ----------------------------------------------------------------------------------------


def test_sets_merge_values_with_the_same_id_in_order(tmp_path):
    config = load_text(
        tmp_path,
        "default_set = 2\n"
        'rtpproxy_sock = ["1 == udp:10.0.0.1:22222 udp:10.0.0.2:22222", "udp:10.0.0.9:22222=3",'
        ' "1 == udp:10.0.0.3:22222|203.0.113.7=2"]\n',
    )
    sets = config.sets()
    assert sorted(sets) == [1, 2]
    assert [node.url for node in sets[1]] == ["udp:10.0.0.1:22222", "udp:10.0.0.2:22222", "udp:10.0.0.3:22222"]
    assert (sets[1][2].weight, sets[1][2].advertised) == (2, "203.0.113.7")
    assert [(node.url, node.weight) for node in sets[2]] == [("udp:10.0.0.9:22222", 3)]


def test_a_bad_node_spec_names_the_file_and_the_key(tmp_path):
    config = load_text(tmp_path, 'rtpproxy_sock = ["udp:10.0.0.1:22222", "1 == udp:[::1]:22222"]\n')
    with pytest.raises(ConfigError) as info:
        config.sets()
    assert info.value.message.startswith(f"{tmp_path / 'config.toml'}: rtpproxy_sock: node spec 'udp:[::1]:22222'")
    assert "brackets" in info.value.message


def test_as_dict_has_every_key_in_the_files_shape(tmp_path):
    data = load_text(tmp_path, 'rtpproxy_sock = "udp:10.0.0.1:22222"\n').as_dict()
    assert list(data) == [p.name for p in PARAMETERS] + ["embedded"]
    assert data["rtpproxy_sock"] == ["udp:10.0.0.1:22222"]
    assert list(data["embedded"]) == [p.name for p in EMBEDDED_PARAMETERS]


def test_every_parameter_is_a_config_field_and_back_in_the_same_order():
    # Config holds each key's default, the Parameter table how it is read: the same keys, in one order.
    names = [p.name for p in PARAMETERS]
    assert names == [f.name for f in fields(Config) if f.name not in ("embedded", "path", "sources")]
    # Every field of the embedded relay's options is a key of [embedded]: none is settable only
    # from the class (pcap and extra_args were once refused as unknown keys).
    assert [p.name for p in EMBEDDED_PARAMETERS] == [f.name for f in fields(EmbeddedOptions)]


def test_the_generated_sdp_range_and_the_embedded_relays_ports_are_one_default():
    assert (Config().generated_sdp_port_min, Config().generated_sdp_port_max) == (
        EmbeddedOptions().port_min, EmbeddedOptions().port_max) == (35000, 65000)


def test_embedded_pcap_and_extra_args_are_keys(tmp_path):
    config = load_text(tmp_path, '[embedded]\nrecord_dir = "/tmp"\npcap = true\nextra_args = ["-d", "info", "-x y"]\n')
    assert config.embedded.pcap is True and config.embedded.extra_args == ["-d", "info", "-x y"]
    assert config.source("embedded.pcap") == config.source("embedded.extra_args") == str(tmp_path / "config.toml")
    assert load_text(tmp_path, "[embedded]\npcap = 0\n").embedded.pcap is False
    assert config.as_dict()["embedded"]["extra_args"] == ["-d", "info", "-x y"]


@pytest.mark.parametrize(("line", "says"), [
    ('pcap = "yes"', "embedded.pcap: expected true or false"),
    ('extra_args = "-d info"', "embedded.extra_args: expected a list of strings"),
    ('extra_args = [""]', "embedded.extra_args: expected a list of strings"),
    ('extra_args = ["a\\u0000b"]', "embedded.extra_args: expected a list of strings"),
    ("extra_args = [1]", "embedded.extra_args: expected a list of strings"),
])
def test_bad_embedded_pcap_and_extra_args_are_config_errors(tmp_path, line, says):
    with pytest.raises(ConfigError, match=says):
        load_text(tmp_path, f"[embedded]\n{line}\n")


def test_the_engine_gets_pcap_and_extra_args_from_the_config(tmp_path):
    from rtppctl.embedded import engine_args

    config = load_text(tmp_path, '[embedded]\nrecord_dir = "/tmp"\npcap = true\nextra_args = ["-d", "info"]\n')
    args = engine_args(config.embedded)
    assert "-P" in args and args[-2:] == ["-d", "info"]


# -- the starter file ----------------------------------------------------------------------------


def test_starter_file_round_trips_to_the_defaults(tmp_path):
    path = write_starter_config(tmp_path / "config.toml", force=False)
    config = load_config(str(path))
    assert config == Config(path=path)
    assert config.embedded == EmbeddedOptions()


def test_starter_file_names_every_key_under_a_comment():
    lines = starter_config_text().splitlines()
    for parameter in (*PARAMETERS, *EMBEDDED_PARAMETERS):
        (index,) = [i for i, line in enumerate(lines) if line.startswith((f"{parameter.name} =", f"# {parameter.name} ="))]
        assert lines[index - 1].startswith("# "), parameter.name


def test_starter_file_creates_parent_dirs_and_leaves_no_temp_files(tmp_path):
    target = tmp_path / "a" / "b" / "config.toml"
    assert write_starter_config(target, force=False) == target
    assert os.listdir(target.parent) == ["config.toml"]


def test_starter_file_refuses_to_overwrite_without_force(tmp_path):
    target = write(tmp_path / "etc" / "config.toml", "rtpproxy_retr = 2\n")
    with pytest.raises(ConfigError) as info:
        write_starter_config(target, force=False)
    assert str(target) in info.value.message and "already exists" in info.value.message
    assert "--force" in info.value.hint
    assert target.read_text() == "rtpproxy_retr = 2\n"
    assert os.listdir(target.parent) == ["config.toml"]
    write_starter_config(target, force=True)
    assert load_config(str(target)).rtpproxy_retr == 5
    assert os.listdir(target.parent) == ["config.toml"]


def test_starter_file_refuses_a_directory(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        write_starter_config(tmp_path, force=True)


def test_a_wrong_url_in_the_config_is_named_without_its_password(tmp_path):
    from rtppctl.config import load_config
    from rtppctl.proto.errors import ConfigError

    path = tmp_path / "c.toml"
    path.write_text('state_url = "mysql://ops:s3cret@db/rtppctl"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "ops:***@db" in caught.value.message and "s3cret" not in caught.value.message
