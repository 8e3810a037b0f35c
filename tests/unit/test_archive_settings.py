"""The archive limits as settings: keys, types, defaults equal to Limits', and the path
from settings to the inspection of a claimed item."""

from __future__ import annotations

from pathlib import Path

import pytest

from spoold import config
from spoold.errors import ConfigError
from spoold.inspection.archive import DEFAULT_MAX_RATIO, DEFAULT_MAX_UNCOMPRESSED, Limits
from spoold.spool import Result, Spool
from spoold.storage.memory import MemoryStorage
from spoold.testing.dists import build_wheel
from spoold.worker.processing import archive_limits, process


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "spoold.toml"
    path.write_text(text)
    return path


def test_defaults_are_the_inspection_defaults() -> None:
    settings = config.Settings()
    assert settings.max_uncompressed == Limits().max_uncompressed == DEFAULT_MAX_UNCOMPRESSED == 16 << 30
    assert settings.max_ratio == Limits().max_ratio == DEFAULT_MAX_RATIO == 100.0
    assert archive_limits(settings) == Limits()


def test_limits_from_the_file(tmp_path: Path) -> None:
    settings = config.load(write(tmp_path, "max_uncompressed = 34359738368\nmax_ratio = 0\n"))
    assert (settings.max_uncompressed, settings.max_ratio) == (32 << 30, 0.0)
    assert isinstance(settings.max_ratio, float)
    assert archive_limits(settings) == Limits(max_uncompressed=32 << 30, max_ratio=0.0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('max_uncompressed = "16G"', "setting max_uncompressed = '16G': expected a whole number"),
        ("max_uncompressed = 1.5", "setting max_uncompressed = 1.5: expected a whole number"),
        ("max_ratio = -1", "setting max_ratio = -1: expected a number of 0 or more"),
        ("max_ratio = true", "setting max_ratio = True: expected a number"),
    ],
)
def test_wrong_types_name_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        config.load(write(tmp_path, text + "\n"))


def test_process_inspects_with_the_limits_it_is_given(spool: Spool) -> None:
    filename, data, _ = build_wheel("demo", "1.0", payload=b"x" * 4000)
    claim = spool.claim(spool.deliver_bytes(data, filename))
    handled = process(spool, MemoryStorage(), claim, limits=Limits(max_uncompressed=1000))
    assert handled.outcome is not None and handled.outcome.result is Result.REJECTED
    assert handled.outcome.code == "archive-limits"
    assert "at most 1000 are accepted (the max_uncompressed setting)" in handled.outcome.message
