"""htpasswd accounts: schemes, reloading, the success cache, and `spoold user add`."""

from __future__ import annotations

import base64
import io
import os
import stat
from pathlib import Path

import pytest
from testlib.clock import FakeClock
from passlib.hash import apr_md5_crypt, bcrypt, ldap_sha1, sha256_crypt, sha512_crypt

from spoold.access.htpasswd import (
    BadCredentials,
    Credentials,
    Htpasswd,
    add_user,
    parse_basic,
    password_from_stream,
    prompt_password,
)
from spoold.errors import ConfigError


def fast_bcrypt(password: str) -> str:
    return bcrypt.using(rounds=4, ident="2y").hash(password)


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


@pytest.fixture
def htfile(tmp_path: Path) -> Path:
    return write(tmp_path / "htpasswd", [
        "alice:" + fast_bcrypt("wonderland"),
        "bob:" + sha256_crypt.using(rounds=1000).hash("builder"),
        "carol:" + sha512_crypt.using(rounds=1000).hash("singer"),
        "dave:" + apr_md5_crypt.hash("apache"),
        "eve:" + ldap_sha1.hash("unsalted"),
        "mallory:plaintext",
    ])


@pytest.mark.parametrize(
    ("user", "password", "ok"),
    [
        ("alice", "wonderland", True),
        ("alice", "Wonderland", False),
        ("alice", "", False),
        ("bob", "builder", True),
        ("carol", "singer", True),
        ("dave", "apache", True),
        ("dave", "apachE", False),
        # weak schemes never match, even with the right password
        ("eve", "unsalted", False),
        ("mallory", "plaintext", False),
        ("nobody", "wonderland", False),
        ("ALICE", "wonderland", False),
    ],
)
def test_schemes(htfile: Path, user: str, password: str, ok: bool) -> None:
    assert Htpasswd(htfile).verify(user, password) is ok


def test_bcrypt_long_passwords_are_truncated_like_apache(tmp_path: Path) -> None:
    secret = "p" * 72
    path = write(tmp_path / "h", ["u:" + fast_bcrypt(secret)])
    auth = Htpasswd(path)
    assert auth.verify("u", secret)
    assert auth.verify("u", secret + "ignored by bcrypt")


def test_success_is_remembered_briefly(htfile: Path) -> None:
    clock = FakeClock(1000.0)
    auth = Htpasswd(htfile, clock=clock, cache_seconds=60)
    assert auth.verify("alice", "wonderland")
    assert auth.verify("alice", "wonderland")
    assert auth.slow_checks == 1
    # a wrong password is always checked (and never remembered)
    assert not auth.verify("alice", "wrong")
    assert not auth.verify("alice", "wrong")
    assert auth.slow_checks == 3
    clock.advance(61)
    assert auth.verify("alice", "wonderland")
    assert auth.slow_checks == 4


def test_cache_is_keyed_by_password_and_entry(htfile: Path) -> None:
    clock = FakeClock()
    auth = Htpasswd(htfile, clock=clock)
    assert auth.verify("alice", "wonderland")
    # the password changes in the file: the old one no longer works, at once
    write(htfile, ["alice:" + fast_bcrypt("new password")])
    assert not auth.verify("alice", "wonderland")
    assert auth.verify("alice", "new password")


def test_file_changes_are_picked_up_by_size_and_mtime(htfile: Path) -> None:
    auth = Htpasswd(htfile)
    assert auth.users >= {"alice", "bob"}
    st = os.stat(htfile)
    # same size, same second: only mtime_ns/inode can tell; a rewrite via rename changes inode
    write(htfile, ["zed:" + fast_bcrypt("zzzzzzzzzz")])
    os.utime(htfile, ns=(st.st_atime_ns, st.st_mtime_ns + 1))
    assert auth.verify("zed", "zzzzzzzzzz")
    assert not auth.verify("alice", "wonderland")
    assert auth.users == {"zed"}


def test_explicit_reload_forgets_the_cache(htfile: Path) -> None:
    auth = Htpasswd(htfile)
    assert auth.verify("alice", "wonderland")
    auth.reload()
    assert auth.verify("alice", "wonderland")
    assert auth.slow_checks == 2


def test_a_broken_or_missing_file_keeps_the_previous_users(htfile: Path) -> None:
    auth = Htpasswd(htfile)
    htfile.unlink()
    assert auth.verify("alice", "wonderland")
    with pytest.raises(ConfigError, match="does not exist.*spoold user add"):
        auth.reload()
    assert auth.verify("alice", "wonderland")


def test_opening_a_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="spoold user add NAME --htpasswd"):
        Htpasswd(tmp_path / "missing")
    with pytest.raises(ConfigError, match="htpasswd"):
        Htpasswd(tmp_path)


def test_overlong_credentials_are_refused_without_hashing(htfile: Path) -> None:
    auth = Htpasswd(htfile)
    assert not auth.verify("alice", "x" * 5000)
    assert auth.slow_checks == 0


def test_add_user_creates_and_replaces(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    assert add_user(path, "alice", "first", rounds=4) is True
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert add_user(path, "bob", "second", rounds=4) is True
    assert add_user(path, "alice", "changed", rounds=4) is False
    lines = path.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == ["alice", "bob"]
    assert all(line.split(":", 1)[1].startswith("$2y$04$") for line in lines)
    auth = Htpasswd(path)
    assert auth.verify("alice", "changed") and not auth.verify("alice", "first")
    assert auth.verify("bob", "second")
    # nothing left behind
    assert sorted(p.name for p in tmp_path.iterdir()) == ["htpasswd"]


def test_add_user_keeps_other_entries_and_mode(htfile: Path) -> None:
    os.chmod(htfile, 0o640)
    add_user(htfile, "new", "password", rounds=4)
    assert stat.S_IMODE(os.stat(htfile).st_mode) == 0o640
    auth = Htpasswd(htfile)
    assert auth.verify("dave", "apache") and auth.verify("new", "password")


def test_a_running_server_sees_added_users(tmp_path: Path) -> None:
    path = tmp_path / "htpasswd"
    add_user(path, "alice", "one", rounds=4)
    auth = Htpasswd(path)
    add_user(path, "bob", "two", rounds=4)
    assert auth.verify("bob", "two")


@pytest.mark.parametrize(
    ("name", "password", "message"),
    [
        ("", "pw", "empty"),
        ("a:b", "pw", "':'"),
        ("a b", "pw", "spaces"),
        ("a\nb", "pw", "spaces or control"),
        ("x" * 256, "pw", "255"),
        ("alice", "", "empty"),
        ("alice", "line\nbreak", "line breaks"),
        ("alice", "é" * 40, "72 bytes"),
    ],
)
def test_add_user_refuses(tmp_path: Path, name: str, password: str, message: str) -> None:
    with pytest.raises(BadCredentials, match=message):
        add_user(tmp_path / "h", name, password, rounds=4)
    assert not (tmp_path / "h").exists()


def test_add_user_refuses_a_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "h"
    path.write_bytes(b"\xff\xfe not utf-8 :x\n")
    with pytest.raises(ConfigError, match="malformed"):
        add_user(path, "alice", "pw", rounds=4)


def b64(text: str) -> bytes:
    return b"Basic " + base64.b64encode(text.encode("utf-8"))


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (b64("alice:wonderland"), Credentials("alice", "wonderland")),
        (b64("alice:with:colons"), Credentials("alice", "with:colons")),
        (b64("alice:"), Credentials("alice", "")),
        (b64("ünï:cödé"), Credentials("ünï", "cödé")),
        ("basic " + base64.b64encode(b"a:b").decode(), Credentials("a", "b")),
        (b"Basic " + base64.b64encode("é:x".encode("latin-1")), Credentials("é", "x")),
        (None, None),
        (b"", None),
        (b"Bearer token", None),
        (b"Basic", None),
        (b"Basic !!!notbase64", None),
        (b64("no-colon"), None),
        (b64(":password-without-user"), None),
        (b"Basic " + b"A" * 10_000, None),
    ],
)
def test_parse_basic(header: bytes | str | None, expected: Credentials | None) -> None:
    assert parse_basic(header) == expected


def test_credentials_repr_hides_the_password() -> None:
    assert "wonderland" not in repr(Credentials("alice", "wonderland"))


def test_password_input() -> None:
    assert password_from_stream(io.StringIO("secret\nrest\n")) == "secret"
    assert password_from_stream(io.StringIO("secret\r\n")) == "secret"
    answers = iter(["pw", "pw"])
    assert prompt_password("alice", ask=lambda prompt: next(answers)) == "pw"
    answers = iter(["pw", "other"])
    with pytest.raises(BadCredentials, match="do not match"):
        prompt_password("alice", ask=lambda prompt: next(answers))
