"""Fuzzing the agent's configuration: bad TOML gets one clear error naming the key, and the
agent writes nothing.

Three kinds of input go to ``config.load`` (and, when refused, to ``fleetup-agent status``):

- a good configuration with one field given a value its rules forbid (a wrong type, below
  the minimum, not a number, a URL without a host, a path the system cannot use), one
  required field removed, or one unknown field or section added: the error names exactly
  that field;
- arbitrary text and bytes: refused, naming the file or a key the text holds;
- whatever is accepted must be usable: finite numbers at or above their minimum, URLs with
  a host, paths without NUL characters.

Every case checks that the folder holding the configuration is left exactly as it was.
"""

from __future__ import annotations

import math
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from fleetup.agent import cli
from fleetup.agent.config import AgentConfig, load
from fleetup.agent.errors import ConfigError

FUZZ = settings(
    max_examples=80,
    deadline=None,
    # One folder serves every example; each example checks it is left as it was.
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

GOOD: dict[str, dict[str, Any]] = {
    "server": {
        "primary_url": "https://fleetup.example.com/",
        "fallback_url": "https://fleetup-4g.example.com",
        "timeout_s": 30,
        "retries": 4,
        "backoff_s": 1.0,
        "verify_tls": True,
    },
    "device": {
        "serial": "IPC-0001",
        "model": "XK-200",
        "enrollment_token": "tok",
        "device_id": "dev-1",
        "credential_file": "work/credential.json",
    },
    "paths": {
        "data_dirs": ["data", "/srv/logs"],
        "install_root": "program",
        "work_dir": "work",
        "tuf_root": "root.json",
        "cloud_settings_file": "program/cloud-connection.json",
    },
    "agent": {
        "heartbeat_interval_s": 30,
        "poll_interval_s": 30,
        "self_test_timeout_s": 900,
        "hook_timeout_s": 600,
        "state_loop_cap": 4,
        "upload_chunk_bytes": 1 << 20,
        "mqtt_url": "mqtt://broker.example.com:1883",
    },
}


@dataclass(frozen=True)
class Rule:
    """What the agent accepts in one field, as deploy/agent.example.toml documents it."""

    kind: str  # text, url, mqtt, number, integer, boolean, path, paths
    required: bool = False
    minimum: float = 0.0


RULES: dict[str, Rule] = {
    "server.primary_url": Rule("url", required=True),
    "server.fallback_url": Rule("url"),
    "server.timeout_s": Rule("number", minimum=0.001),
    "server.retries": Rule("integer", minimum=1),
    "server.backoff_s": Rule("number", minimum=0.0),
    "server.verify_tls": Rule("boolean"),
    "device.serial": Rule("text", required=True),
    "device.model": Rule("text"),
    "device.enrollment_token": Rule("text"),
    "device.device_id": Rule("text"),
    "device.credential_file": Rule("path"),
    "paths.data_dirs": Rule("paths", required=True),
    "paths.install_root": Rule("path", required=True),
    "paths.work_dir": Rule("path", required=True),
    "paths.tuf_root": Rule("path", required=True),
    "paths.cloud_settings_file": Rule("path"),
    "agent.heartbeat_interval_s": Rule("number", minimum=0.001),
    "agent.poll_interval_s": Rule("number", minimum=0.001),
    "agent.self_test_timeout_s": Rule("number", minimum=0.001),
    "agent.hook_timeout_s": Rule("number", minimum=0.001),
    "agent.state_loop_cap": Rule("integer", minimum=1),
    "agent.upload_chunk_bytes": Rule("integer", minimum=1024),
    "agent.mqtt_url": Rule("mqtt"),
}
SECTIONS = {name.partition(".")[0] for name in RULES}


# --- writing TOML (the standard library only reads it) ----------------------------------------


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        escaped = "".join(
            f"\\u{ord(char):04x}" if ord(char) < 0x20 or ord(char) == 0x7F else char
            for char in value.replace("\\", "\\\\").replace('"', '\\"')
        )
        return f'"{escaped}"'
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {toml_value(v)}' for k, v in value.items()) + "}"
    raise TypeError(value)


def toml_document(config: dict[str, Any]) -> str:
    # Bare values come before the first table header, or they would land in that table.
    bare = [
        f'"{name}" = {toml_value(value)}'
        for name, value in config.items()
        if not isinstance(value, dict)
    ]
    tables = [
        "\n".join(
            [f'["{name}"]', *(f'"{key}" = {toml_value(item)}' for key, item in value.items())]
        )
        for name, value in config.items()
        if isinstance(value, dict)
    ]
    return "\n".join([*bare, *tables]) + "\n"


# --- values a field's rules refuse -------------------------------------------------------------

_SCALARS = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.datetimes(timezones=st.just(UTC)),
    st.dates(),
)
_NOT_TEXT = _SCALARS | st.lists(st.text(max_size=5), max_size=3) | st.just({"a": 1})
_BAD_URLS = st.sampled_from(
    ["ftp://fleetup.example.com", "fleetup.example.com", "http://", "https:///path", "http:"]
)


def wrong_value(rule: Rule) -> st.SearchStrategy[Any]:
    """A value that breaks ``rule``, whichever it is."""
    below = st.floats(max_value=rule.minimum, exclude_max=True, allow_nan=False)
    options: dict[str, st.SearchStrategy[Any]] = {
        "text": _NOT_TEXT,
        "url": _NOT_TEXT | _BAD_URLS,
        "mqtt": _NOT_TEXT | st.sampled_from(["http://broker", "broker:1883", "tcp://b"]),
        "number": (
            st.text(max_size=8)
            | st.booleans()
            | st.lists(st.integers(), max_size=2)
            | st.sampled_from([math.nan, math.inf, -math.inf])
            | st.integers(min_value=10**309)  # past what a float holds
            | below
            | st.integers(max_value=math.ceil(rule.minimum) - 1).filter(lambda n: n < rule.minimum)
        ),
        "integer": (
            st.text(max_size=8)
            | st.booleans()
            | st.floats(allow_nan=True)
            | st.integers(max_value=int(rule.minimum) - 1)
        ),
        "boolean": st.text(max_size=8) | st.integers() | st.floats(allow_nan=False),
        "path": (
            _NOT_TEXT.filter(lambda v: v != "")
            | st.sampled_from(["wo\x00rk", "\x00", "~no-such-user-here/work"])
        ),
        "paths": st.one_of(
            st.just([]),
            _SCALARS,
            st.lists(_SCALARS, min_size=1, max_size=3),
            st.just(["data", ""]),
            st.just(["data", "data"]),
            st.just(["da\x00ta"]),
            st.just(["work"]),  # the same folder as work_dir
        ),
    }
    return options[rule.kind]


@dataclass
class Case:
    document: str
    field: str


@st.composite
def one_field_wrong(draw: st.DrawFn) -> Case:
    name = draw(st.sampled_from(sorted(RULES)))
    section, _, key = name.partition(".")
    config = {s: dict(table) for s, table in GOOD.items()}
    config[section][key] = draw(wrong_value(RULES[name]))
    return Case(toml_document(config), name)


@st.composite
def required_field_missing(draw: st.DrawFn) -> Case:
    name = draw(st.sampled_from(sorted(n for n, rule in RULES.items() if rule.required)))
    section, _, key = name.partition(".")
    config = {s: dict(table) for s, table in GOOD.items()}
    if draw(st.booleans()):
        del config[section][key]
    else:
        config[section][key] = ""
    return Case(toml_document(config), name)


_NAMES = st.text(string.ascii_lowercase + "_", min_size=1, max_size=12)


@st.composite
def unknown_name_added(draw: st.DrawFn) -> Case:
    config: dict[str, Any] = {s: dict(table) for s, table in GOOD.items()}
    if draw(st.booleans()):
        section = draw(st.sampled_from(sorted(SECTIONS)))
        key = draw(_NAMES.filter(lambda k: f"{section}.{k}" not in RULES))
        config[section][key] = draw(_SCALARS)
        return Case(toml_document(config), f"{section}.{key}")
    section = draw(_NAMES.filter(lambda s: s not in SECTIONS))
    config[section] = draw(st.just({"x": 1}) | _SCALARS)
    return Case(toml_document(config), section)


# --- the folder the agent must not write to -----------------------------------------------------


def listing(folder: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(folder.rglob("*"))
    }


@pytest.fixture
def config_file(tmp_path: Path) -> Iterator[Path]:
    """Where each example writes its configuration; the folder around it is otherwise empty."""
    folder = tmp_path / "etc"
    folder.mkdir()
    yield folder / "agent.toml"


def write(path: Path, content: str | bytes) -> dict[str, tuple[int, int]]:
    """Write the configuration and return the folder's listing to compare after loading."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return listing(path.parent)


def refused(path: Path, capsys: pytest.CaptureFixture[str]) -> ConfigError:
    """Load ``path`` expecting a refusal, and check the CLI says the same without a traceback."""
    before = listing(path.parent)
    with pytest.raises(ConfigError) as caught:
        load(path)
    error = caught.value
    assert error.problem.strip(), error
    assert error.field in str(error)
    capsys.readouterr()
    assert cli.main(["status", "--config", str(path)]) == 2
    printed = capsys.readouterr().err
    assert error.field in printed
    assert "Traceback" not in printed
    assert listing(path.parent) == before, "a refused configuration wrote files"
    return error


def assert_usable(config: AgentConfig) -> None:
    """What an accepted configuration must hold for the agent to run on it."""
    for name, rule in RULES.items():
        attribute = name.partition(".")[2]
        value = getattr(config, attribute)
        if rule.kind in ("number", "integer"):
            assert math.isfinite(value) and value >= rule.minimum, (name, value)
        elif rule.kind == "url" and value is not None:
            assert urlsplit(value).hostname, (name, value)
        elif rule.kind == "path":
            assert "\x00" not in str(value), (name, value)
        elif rule.kind == "paths":
            assert all("\x00" not in str(path) for path in value), (name, value)


# --- the tests ----------------------------------------------------------------------------------


def test_the_good_configuration_is_accepted_as_written(config_file: Path) -> None:
    before = write(config_file, toml_document(GOOD))
    config = load(config_file)
    assert config.primary_url == "https://fleetup.example.com"
    assert config.data_dirs == (config_file.parent / "data", Path("/srv/logs"))
    assert config.upload_chunk_bytes == 1 << 20
    assert_usable(config)
    assert listing(config_file.parent) == before


@FUZZ
@given(case=one_field_wrong() | required_field_missing() | unknown_name_added())
def test_one_wrong_field_is_refused_naming_exactly_that_field(
    config_file: Path, capsys: pytest.CaptureFixture[str], case: Case
) -> None:
    write(config_file, case.document)
    note(case.document)
    assert refused(config_file, capsys).field == case.field, case.document


_TOML_SOUP = st.lists(
    st.sampled_from(["[server]", "[paths]", "[[agent]]", "a = 1", 'x = "', "=", "\n", "]", "{"])
    | st.text(max_size=20),
    max_size=12,
).map("\n".join)


@FUZZ
@given(content=st.binary(max_size=300) | st.text(max_size=300) | _TOML_SOUP)
def test_arbitrary_content_is_refused_naming_the_file_or_a_key_it_holds(
    config_file: Path, capsys: pytest.CaptureFixture[str], content: str | bytes
) -> None:
    write(config_file, content)
    error = refused(config_file, capsys)
    text = content.decode("utf-8", "replace") if isinstance(content, bytes) else content
    named = error.field.partition(".")
    assert (
        error.field == "(file)" or error.field in RULES or named[0] in text or named[2] in text
    ), (error, content)


@FUZZ
@given(
    deep=st.integers(200, 5000),
    opener=st.sampled_from([("[", "]"), ("{a = ", "}")]),
)
def test_deeply_nested_values_are_refused_not_crashed_on(
    config_file: Path, capsys: pytest.CaptureFixture[str], deep: int, opener: tuple[str, str]
) -> None:
    start, end = opener
    write(config_file, toml_document(GOOD) + f"[agent2]\nx = {start * deep}1{end * deep}\n")
    assert refused(config_file, capsys).field in ("(file)", "agent2")


@FUZZ
@given(
    name=st.sampled_from(sorted(n for n, rule in RULES.items() if rule.kind != "paths")),
    value=_SCALARS | st.text(max_size=30),
)
def test_whatever_is_accepted_is_usable(config_file: Path, name: str, value: Any) -> None:
    section, _, key = name.partition(".")
    config = {s: dict(table) for s, table in GOOD.items()}
    config[section][key] = value
    before = write(config_file, toml_document(config))
    try:
        accepted = load(config_file)
    except ConfigError as error:
        # A folder can also clash with the data folders, which are then the field named.
        assert error.field in (name, "paths.data_dirs"), error
    else:
        assert_usable(accepted)
    assert listing(config_file.parent) == before
