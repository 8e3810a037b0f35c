"""Digests: one pass, the published hashes, declared digests compared as twine sends them."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest

from spoold.hashing import BackgroundHash, Digests, Hasher, hash_file, hash_stream
from spoold.inspection.digests import DigestMismatch, check_declared

DATA = bytes(range(256)) * 10_000 + b"tail"


def expected(md5: bool = False) -> Digests:
    return Digests(
        size=len(DATA),
        sha256=hashlib.sha256(DATA).hexdigest(),
        blake2_256=hashlib.blake2b(DATA, digest_size=32).hexdigest(),
        md5=hashlib.md5(DATA).hexdigest() if md5 else None,
    )


@pytest.mark.parametrize("md5", [False, True])
def test_hash_stream_and_file(tmp_path: Path, md5: bool) -> None:
    path = tmp_path / "f"
    path.write_bytes(DATA)
    assert hash_stream(io.BytesIO(DATA), md5=md5, chunk_size=4096) == expected(md5)
    assert hash_file(path, md5=md5) == expected(md5)
    assert BackgroundHash(path, md5=md5).result() == expected(md5)


def test_stream_without_readinto() -> None:
    class ReadOnly:
        def __init__(self) -> None:
            self._inner = io.BytesIO(DATA)

        def read(self, n: int) -> bytes:
            return self._inner.read(n)

    assert hash_stream(ReadOnly()) == expected()  # type: ignore[arg-type]


def test_incremental_hasher_matches() -> None:
    hasher = Hasher(md5=True)
    for i in range(0, len(DATA), 1000):
        hasher.update(DATA[i : i + 1000])
    assert hasher.digests() == expected(md5=True)


def test_background_hash_reraises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        BackgroundHash(tmp_path / "missing").result()


def test_declared_match_passes_case_and_blanks_ignored() -> None:
    actual = expected(md5=True)
    check_declared(actual, None)
    check_declared(actual, {})
    check_declared(
        actual,
        {
            "sha256_digest": actual.sha256.upper(),
            "md5_digest": actual.md5 or "",
            "blake2_256_digest": "",
            "comment": "not a digest",
        },
    )


def test_every_mismatch_is_listed() -> None:
    actual = expected(md5=True)
    with pytest.raises(DigestMismatch) as info:
        check_declared(actual, {"sha256_digest": "0" * 64, "md5_digest": "1" * 32})
    assert info.value.code == "digest-mismatch"
    assert "sha256_digest was 000" in info.value.message
    assert "md5_digest was 111" in info.value.message
    assert actual.sha256 in info.value.message
    assert "upload it again" in info.value.message


@pytest.mark.parametrize("value", ["abc", "g" * 64, "0" * 63, "0" * 128])
def test_malformed_declared_digest(value: str) -> None:
    with pytest.raises(DigestMismatch, match="not a 64-digit hex digest"):
        check_declared(expected(), {"sha256_digest": value})


def test_declared_md5_needs_computed_md5() -> None:
    with pytest.raises(ValueError, match="md5"):
        check_declared(expected(md5=False), {"md5_digest": "0" * 32})


def test_sha256_alone_skips_blake2(tmp_path: Path) -> None:
    path = tmp_path / "data"
    path.write_bytes(DATA)
    digests = hash_file(path, blake2=False)
    assert digests.sha256 == expected().sha256
    assert digests.blake2_256 is None and digests.size == len(DATA)
