"""Agent spec files: the embedded receptionist, an operator's folder, errors naming the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from agents.catalog import SpecError, embedded_specs, load_spec, load_specs

SMALL = """
name = "{name}"
kind = "flow"
greeting = "{greeting}"
[flow]
start = "main"
[flow.nodes.main]
do = [{{ end = true }}]
"""


def write(folder: Path, file: str, name: str, greeting: str = "Hello.") -> Path:
    path = folder / file
    path.write_text(SMALL.format(name=name, greeting=greeting), encoding="utf-8")
    return path


def test_embedded_receptionist() -> None:
    specs = embedded_specs()
    spec = specs["receptionist"]
    assert spec.kind == "flow"
    assert spec.flow is not None
    assert spec.transfer_target == "sip:frontdesk@clinic.example"
    assert "Bright Smile Dental" in spec.greeting
    assert {"main", "booking", "confirm", "anything_else", "goodbye"} <= set(spec.flow.nodes)
    assert {s.type for s in spec.flow.slots.values()} == {"name", "day", "time"}


def test_load_one_file(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "a.toml", "alpha"))
    assert spec.name == "alpha"
    assert load_spec(str(tmp_path / "a.toml")) == spec


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match=r"nope\.toml: cannot read agent spec"):
        load_spec(tmp_path / "nope.toml")


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b'name = "\xff"\n')
    with pytest.raises(SpecError, match=r"bin\.toml: not UTF-8"):
        load_spec(path)


def test_errors_name_the_file_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.toml", "Not A Name")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}: name: Expected `str` matching regex")


def test_extra_folder_adds_and_replaces(tmp_path: Path) -> None:
    write(tmp_path, "mine.toml", "mine")
    write(tmp_path, "override.toml", "receptionist", greeting="Custom hello.")
    (tmp_path / "notes.txt").write_text("not a spec", encoding="utf-8")
    specs = load_specs(str(tmp_path))
    assert set(specs) >= {"mine", "receptionist"}
    assert specs["receptionist"].greeting == "Custom hello."
    assert load_specs(None) == embedded_specs()


def test_duplicate_names_in_a_folder(tmp_path: Path) -> None:
    write(tmp_path, "a.toml", "same")
    write(tmp_path, "b.toml", "same")
    with pytest.raises(
        SpecError, match=r"b\.toml: name: agent 'same' is also defined in .*a\.toml"
    ):
        load_specs(str(tmp_path))


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="agent spec folder does not exist"):
        load_specs(str(tmp_path / "absent"))


def test_a_bad_file_in_the_folder_is_named(tmp_path: Path) -> None:
    write(tmp_path, "good.toml", "good")
    (tmp_path / "broken.toml").write_text("name = 'x'\nkind = 'flow'\n[flow]\n", encoding="utf-8")
    with pytest.raises(SpecError) as info:
        load_specs(str(tmp_path))
    message = str(info.value)
    assert "broken.toml" in message
    assert "flow" in message


@pytest.mark.parametrize(
    ("extra", "says"),
    [
        ('transfer_target = "100\\r\\nAction: Originate"', "transfer_target: not a transfer"),
        ('transfer_target = "default,100,1"', "transfer_target: not a transfer"),
        ('transfer_target = "sip:desk@clinic.example;maddr=evil"', "transfer_target: not a"),
    ],
)
def test_transfer_targets_must_be_destinations(tmp_path: Path, extra: str, says: str) -> None:
    path = tmp_path / "a.toml"
    path.write_text(SMALL.format(name="alpha", greeting="Hi.").replace(
        'kind = "flow"', f'kind = "flow"\n{extra}'), encoding="utf-8")  # fmt: skip
    with pytest.raises(SpecError, match=says):
        load_spec(path)


def test_flow_transfer_targets_must_be_destinations(tmp_path: Path) -> None:
    path = tmp_path / "a.toml"
    text = SMALL.format(name="alpha", greeting="Hi.")
    path.write_text(text.replace("{ end = true }", '{ transfer = "sip:x@y.example&PJSIP/z" }'))
    with pytest.raises(SpecError, match=r"flow\.nodes\.main\.do\[0\]\.transfer: not a transfer"):
        load_spec(path)
    path.write_text(text.replace("{ end = true }", '{ transfer = "+15551234567" }'))
    assert load_spec(path).flow is not None
