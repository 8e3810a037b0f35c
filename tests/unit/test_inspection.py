"""inspect_file on good input, and the metadata policy in detail."""

from __future__ import annotations

import hashlib
import os
import random
import zipfile
from pathlib import Path

import pytest

import spoold.inspection.inspect
import spoold.inspection.metadata
from testlib.distbuild import metadata_text, wheel_members, write_sdist, write_wheel, write_zip
from spoold.errors import Transient
from spoold.hashing import BackgroundHash
from spoold.inspection.digests import DigestMismatch
from spoold.inspection.inspect import inspect_file
from spoold.inspection.metadata import InvalidMetadata, parse_core_metadata
from spoold.inspection.wheel import RecordMismatch


def test_wheel_fields(tmp_path: Path) -> None:
    metadata = metadata_text("Demo", "1.0", metadata_version="2.4", summary="Does demo things",
                             requires_python=">=3.9", extra=[("Requires-Dist", "attrs>=20")])
    path = write_wheel(tmp_path, "demo", "1.0", metadata=metadata)
    data = path.read_bytes()
    dist = inspect_file(path, path.name, declared={"sha256_digest": hashlib.sha256(data).hexdigest()})
    assert (dist.filename, dist.project, dist.name, dist.version, dist.kind) == (
        "demo-1.0-py3-none-any.whl", "demo", "Demo", "1.0", "wheel")
    assert dist.size == len(data)
    assert dist.sha256 == hashlib.sha256(data).hexdigest()
    assert dist.blake2_256 == hashlib.blake2b(data, digest_size=32).hexdigest()
    assert dist.metadata == metadata.encode()
    assert dist.metadata_sha256 == hashlib.sha256(metadata.encode()).hexdigest()
    assert (dist.requires_python, dist.summary) == (">=3.9", "Does demo things")


def test_sdist_fields(tmp_path: Path) -> None:
    path = write_sdist(tmp_path, "demo", "1.0", pkg_info=metadata_text(summary=None))
    dist = inspect_file(path, path.name)
    assert (dist.kind, dist.version, dist.summary, dist.requires_python) == ("sdist", "1.0", None, None)


def test_version_is_normalized(tmp_path: Path) -> None:
    path = write_sdist(tmp_path, "demo", "1.0", pkg_info=metadata_text("demo", "1.0.0-RC1"),
                       filename="demo-1.0.0rc1.tar.gz")
    assert inspect_file(path, path.name).version == "1.0.0rc1"


def test_record_signature_files_need_no_entry(tmp_path: Path) -> None:
    members = wheel_members(record=False)
    members["demo-1.0.dist-info/RECORD.jws"] = b"{}"
    from testlib.distbuild import record_for

    record = record_for({k: v for k, v in members.items() if not k.endswith(".jws")},
                        "demo-1.0.dist-info/RECORD")
    members["demo-1.0.dist-info/RECORD"] = record
    path = write_zip(tmp_path / "demo-1.0-py3-none-any.whl", members)
    assert inspect_file(path, path.name).kind == "wheel"


def test_record_with_sha512_and_directories(tmp_path: Path) -> None:
    import base64

    members = wheel_members(record=False)
    lines = []
    for name, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha512(data).digest()).rstrip(b"=").decode()
        lines.append(f"{name},sha512={digest},{len(data)}")
    lines.append("demo-1.0.dist-info/RECORD,,")
    members["demo-1.0.dist-info/RECORD"] = ("\n".join(lines) + "\n").encode()
    members["demo/"] = b""
    path = write_zip(tmp_path / "demo-1.0-py3-none-any.whl", members)
    assert inspect_file(path, path.name).kind == "wheel"


#: Files this large are hashed in the background in these tests (the real threshold is
#: 8 MiB); still more than one hashing chunk, so the thread hashes in several reads.
#: Setting the module's constant is also what benchmarks/bench_inspect.py does.
BIG = 2 << 20


@pytest.fixture
def hashed_in_background(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Lower the threshold to :data:`BIG`; refuse inline hashing; list background hashes."""
    monkeypatch.setattr(spoold.inspection.inspect, "BACKGROUND_HASH_MIN_SIZE", BIG)
    started: list[object] = []

    class Recorded(BackgroundHash):
        def __init__(self, path: Path, *, md5: bool = False) -> None:
            started.append(path)
            super().__init__(path, md5=md5)

    def inline(*args: object, **kwargs: object) -> None:
        raise AssertionError("a file over the threshold was hashed inline")

    monkeypatch.setattr(spoold.inspection.inspect, "BackgroundHash", Recorded)
    monkeypatch.setattr(spoold.inspection.inspect, "hash_file", inline)
    return started


def _big_wheel(tmp_path: Path) -> Path:
    payload = random.Random(3).randbytes(BIG + 1000)
    return write_wheel(tmp_path, files={"demo/blob.bin": payload, "demo/__init__.py": b""})


def test_big_file_hashed_in_background(tmp_path: Path, hashed_in_background: list[object]) -> None:
    path = _big_wheel(tmp_path)
    data = path.read_bytes()
    assert len(data) >= BIG
    dist = inspect_file(path, path.name, declared={"md5_digest": hashlib.md5(data).hexdigest()})
    assert hashed_in_background == [path]
    assert dist.sha256 == hashlib.sha256(data).hexdigest()
    assert dist.blake2_256 == hashlib.blake2b(data, digest_size=32).hexdigest()


def test_big_file_declared_mismatch_reported_after_archive_error(
    tmp_path: Path, hashed_in_background: list[object]
) -> None:
    """With background hashing the digest verdict still wins over an archive error."""
    members = wheel_members(files={"demo/blob.bin": os.urandom(BIG)})
    members["demo/blob.bin"] = os.urandom(BIG)  # RECORD now wrong
    path = write_zip(tmp_path / "demo-1.0-py3-none-any.whl", members, compression=zipfile.ZIP_STORED)
    with pytest.raises(RecordMismatch):
        inspect_file(path, path.name)
    with pytest.raises(DigestMismatch):
        inspect_file(path, path.name, declared={"sha256_digest": "0" * 64})
    assert hashed_in_background == [path, path]


def test_file_changing_during_inspection_is_transient(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_wheel(tmp_path)
    real = spoold.inspection.inspect.hash_file

    def hash_then_grow(p: Path, *, md5: bool = False):  # type: ignore[no-untyped-def]
        result = real(p, md5=md5)
        return type(result)(result.size + 1, result.sha256, result.blake2_256, result.md5)

    monkeypatch.setattr(spoold.inspection.inspect, "hash_file", hash_then_grow)
    with pytest.raises(Transient, match="changed while"):
        inspect_file(path, path.name)


def test_missing_file_is_not_a_rejection(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        inspect_file(tmp_path / "demo-1.0.tar.gz", "demo-1.0.tar.gz")


# -- metadata policy -------------------------------------------------------------------


def test_strict_lists_every_problem() -> None:
    text = metadata_text(metadata_version="2.1", requires_python="3 or later",
                         extra=[("Requires-Dist", "bad >>= 1"), ("Project-URL", "no comma")])
    with pytest.raises(InvalidMetadata) as info:
        parse_core_metadata(text.encode(), source="PKG-INFO")
    message = info.value.message
    assert message.startswith("PKG-INFO is not valid core metadata: ")
    assert "requires-python" in message and "requires-dist" in message
    assert "rebuild" in message


def test_anachronistic_fields_are_tolerated() -> None:
    text = metadata_text(metadata_version="2.1", extra=[("License-File", "LICENSE"),
                                                        ("License-Expression", "MIT")])
    assert parse_core_metadata(text.encode()).name == "demo"


def test_anachronism_does_not_excuse_invalid_values() -> None:
    text = metadata_text(metadata_version="2.1", extra=[("License-Expression", "not a license (")])
    with pytest.raises(InvalidMetadata, match="license-expression"):
        parse_core_metadata(text.encode())


@pytest.mark.parametrize("version", ["1.0", "1.1", "2.0"])
def test_lenient_versions_accept_legacy_oddities(version: str) -> None:
    text = ("Metadata-Version: {v}\nName: demo\nVersion: 1.0\nSummary: two\n  lines\n"
            "Requires-Dist: not a requirement !!\nX-Custom: yes\n").format(v=version)
    metadata = parse_core_metadata(text.encode())
    assert (metadata.name, str(metadata.version), metadata.summary) == ("demo", "1.0", "two lines")


def test_strict_rejects_multiline_summary() -> None:
    text = "Metadata-Version: 2.1\nName: demo\nVersion: 1.0\nSummary: two\n  lines\n"
    with pytest.raises(InvalidMetadata, match="summary"):
        parse_core_metadata(text.encode())


def test_problem_list_is_capped() -> None:
    message = spoold.inspection.metadata._problems_message("METADATA", [f"problem {i}" for i in range(30)])
    assert "problem 9;" in message and "problem 10" not in message
    assert "and 20 more" in message


@pytest.mark.parametrize("data", [b"", b"\n\n\n", b"garbage without headers", b"\xff\xfe\x00M",
                                  b"Metadata-Version: 2.1\nMetadata-Version: 2.2\nName: a\nVersion: 1\n"])
def test_garbage_metadata_is_invalid(data: bytes) -> None:
    with pytest.raises(InvalidMetadata):
        parse_core_metadata(data)


@pytest.mark.parametrize("metadata_version", ["1.2", "2.1"])
def test_unknown_description_content_type_placeholder_is_accepted(metadata_version: str) -> None:
    """setuptools 36.4-38.x wrote ``UNKNOWN`` for an unset Description-Content-Type (py
    1.5.2, pluggy 0.6.0 on PyPI); it means "no value" and pip ignores it."""
    text = metadata_text(metadata_version=metadata_version, extra=[("Description-Content-Type", "UNKNOWN")])
    assert parse_core_metadata(text.encode(), source="PKG-INFO").name == "demo"


@pytest.mark.parametrize("value", ["unknown", "text/unknown", "UNKNOWN; charset=latin-1"])
def test_other_invalid_description_content_types_are_still_refused(value: str) -> None:
    text = metadata_text(metadata_version="2.1", extra=[("Description-Content-Type", value)])
    with pytest.raises(InvalidMetadata, match="description-content-type"):
        parse_core_metadata(text.encode(), source="PKG-INFO")
