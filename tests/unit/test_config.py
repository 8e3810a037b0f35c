"""Settings: defaults, TOML, flags over TOML, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from spoold import config
from spoold.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spoold.toml"
    path.write_text(text)
    return path


def test_defaults_need_no_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SPOOLD_CONFIG", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    settings = config.load()
    assert settings.spool == str(tmp_path / "spoold" / "spool")
    assert settings.listen == ("tcp:5555:interface=127.0.0.1",)


def test_file_values_and_flags_over_them(tmp_path: Path) -> None:
    path = write(tmp_path, 'threads = 2\nlisten = "tcp:8080"\npage_cache = 1\nspool = "~/s"\n')
    settings = config.load(path, {"threads": 7, "storage": None})
    assert settings.threads == 7 and settings.listen == ("tcp:8080",)
    assert settings.page_cache == 1.0 and isinstance(settings.page_cache, float)
    assert not settings.spool.startswith("~")


def test_the_environment_names_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPOOLD_CONFIG", str(write(tmp_path, "threads = 3\n")))
    assert config.load().threads == 3


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('threads = "four"', "setting threads = 'four': expected a whole number"),
        ("page_cache = [1]", "setting page_cache = [1]: expected a number"),
        ("access_log = 1", "setting access_log = 1: expected true or false"),
        ("threads = true", "setting threads = True: expected a whole number"),
        ("settle = -5", "setting settle = -5: expected a number of 0 or more"),
        ('listen = ["tcp:1", 2]', "setting listen = ['tcp:1', 2]: expected a string or a list of strings"),
        ("htpasswd = 5", "setting htpasswd = 5: expected a string"),
        ("thread = 4", "unknown setting(s) thread; known: "),
    ],
)
def test_wrong_types_are_one_line_errors_naming_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        config.load(write(tmp_path, text + "\n"))
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "threads = = 2\n"))
