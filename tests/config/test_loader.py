"""Settings: defaults, file, VOICENODE_<SECTION>__<KEY> overrides, and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from config import ConfigError, load_settings


def test_defaults_are_the_embedded_offline_setup() -> None:
    s = load_settings(env={})
    assert (s.http.host, s.http.port) == ("127.0.0.1", 8080)
    assert s.stt.model == "" and s.stt.device == "cpu" and s.tts.voice == ""
    assert s.agents.default == "receptionist"
    assert s.http.admin_key == ""


def test_file_then_environment_override(tmp_path: Path) -> None:
    f = tmp_path / "node.toml"
    f.write_text('[http]\nport = 9000\nhost = "0.0.0.0"\n[stt]\nbeam_size = 2\n')
    s = load_settings(f, env={"VOICENODE_HTTP__PORT": "18080", "VOICENODE_NODE__MAX_CALLS": "3"})
    assert s.http.port == 18080  # the variable beats the file
    assert s.http.host == "0.0.0.0"
    assert s.stt.beam_size == 2
    assert s.node.max_calls == 3


def test_admin_key_from_environment() -> None:
    s = load_settings(env={"VOICENODE_ADMIN_KEY": "k-123456789012345678901234"})
    assert s.http.admin_key == "k-123456789012345678901234"


@pytest.mark.parametrize(
    ("env", "file", "names"),
    [
        ({"VOICENODE_ADMIN_KEY": "admin"}, "", "VOICENODE_ADMIN_KEY"),
        ({"VOICENODE_HTTP__ADMIN_KEY": "x" * 23}, "", "VOICENODE_HTTP__ADMIN_KEY"),
        ({}, '[http]\nadmin_key = "changeme"\n', "node.toml"),
    ],
)
def test_a_short_admin_key_is_refused(
    tmp_path: Path, env: dict[str, str], file: str, names: str
) -> None:
    path = None
    if file:
        path = tmp_path / "node.toml"
        path.write_text(file)
    with pytest.raises(ConfigError) as err:
        load_settings(path, env=env)
    message = str(err.value)
    assert names in message and "http.admin_key" in message and "24 characters" in message
    assert "changeme" not in message and "admin'" not in message and "x" * 23 not in message


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"VOICENODE_HTTP__PORT": "abc"}, ["VOICENODE_HTTP__PORT", "http.port", "'abc'", "int"]),
        ({"VOICENODE_HTTP__PORT": "70000"}, ["http.port", "'70000'", "<= 65535"]),
        ({"VOICENODE_STT__DEVICE": "tpu"}, ["stt.device", "'tpu'", "cpu"]),
        ({"VOICENODE_HTTP__PROT": "1"}, ["unknown setting http.prot", "port"]),
        ({"VOICENODE_NOPE__X": "1"}, ["unknown settings section 'nope'", "http"]),
    ],
)
def test_bad_variables_name_the_key_the_value_and_the_expectation(
    env: dict[str, str], expected: list[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env=env)
    for part in expected:
        assert part in str(err.value)


def test_bad_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.toml"
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(missing, env={})
    broken = tmp_path / "broken.toml"
    broken.write_text("[http\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(broken, env={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[stt]\nbeam = 3\n")
    with pytest.raises(
        ConfigError, match=r"unknown setting stt\.beam = 3; expected one of .*beam_size"
    ):
        load_settings(unknown, env={})
    bad_type = tmp_path / "type.toml"
    bad_type.write_text("[node]\nmax_calls = 0\n")
    with pytest.raises(ConfigError, match=r"node\.max_calls = 0.*>= 1"):
        load_settings(bad_type, env={})


def test_list_and_nested_settings_from_the_environment() -> None:
    s = load_settings(
        env={
            "VOICENODE_SIP__CODECS": "PCMA, PCMU",
            "VOICENODE_SIP__TRUSTED_PROXIES": '["10.0.0.1", "10.0.0.2"]',
            "VOICENODE_SIP__TRUNK__URI": "sip:trunk.example.com",
            "VOICENODE_WEBRTC__HOST_ADDRESSES": "",
        }
    )
    assert s.sip.codecs == ["PCMA", "PCMU"]
    assert s.sip.trusted_proxies == ["10.0.0.1", "10.0.0.2"]
    assert s.sip.trunk.uri == "sip:trunk.example.com"
    assert s.webrtc.host_addresses == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [("PCMU, OPUS", "expected one of ['PCMU', 'PCMA', 'G722']"), ('["PCMU",', "invalid list")],
)
def test_a_bad_list_variable_names_the_variable(value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"VOICENODE_SIP__CODECS": value})
    assert "VOICENODE_SIP__CODECS" in str(err.value) and expected in str(err.value)


def test_errors_never_show_secrets(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        '[sip]\ntransports = ["udp", "carrier-pigeon"]\n'
        '[sip.trunk]\nuri = "sip:trunk.example.com"\npassword = "hunter2-trunk"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_settings(bad, env={})
    assert "transports" in str(err.value)
    assert "hunter2" not in str(err.value)
    with pytest.raises(ConfigError) as err:
        load_settings(
            env={"VOICENODE_SIP__TRUNK__PASSWORD": "hunter2-env", "VOICENODE_SIP__PORT": "x"}
        )
    assert "hunter2" not in str(err.value)
    wrong_type = tmp_path / "wrong.toml"
    wrong_type.write_text("[sip.trunk]\npassword = 20240817\n")
    with pytest.raises(ConfigError) as err:
        load_settings(wrong_type, env={})
    assert "sip.trunk.password = '***'" in str(err.value) and "20240817" not in str(err.value)
