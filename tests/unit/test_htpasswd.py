"""htpasswd accounts: schemes, reloading, the success cache, and `spoold user add`."""

from __future__ import annotations

import base64
import io
import os
import stat
from pathlib import Path

import pytest
from testlib.clock import FakeClock
from passlib.context import CryptContext
from passlib.hash import apr_md5_crypt, bcrypt, des_crypt, ldap_sha1, sha256_crypt, sha512_crypt
from twisted.logger import LogLevel, capturedLogs, formatEvent

from spoold.access import htpasswd as htpasswd_module
from spoold.access.credentials import Credentials, parse_authorization
from spoold.access.accounts import add_user, password_from_stream, prompt_password
from spoold.access.htpasswd import BadCredentials, Htpasswd
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
    assert auth.has_user("zed") and not auth.has_user("alice")


def test_explicit_reload_forgets_the_cache(htfile: Path) -> None:
    auth = Htpasswd(htfile)
    assert auth.verify("alice", "wonderland")
    auth.reload()
    assert auth.verify("alice", "wonderland")
    assert auth.slow_checks == 2


def errors(events: list[dict]) -> list[str]:
    return [formatEvent(e) for e in events if e["log_level"] is LogLevel.error]


def test_a_removed_file_lets_nobody_in_until_it_is_back(htfile: Path) -> None:
    """Deleting the file is how an operator revokes everyone: the users are dropped, not
    kept; an error says so at most once a minute while requests come; restoring it is
    enough."""
    clock = FakeClock(1000.0)
    auth = Htpasswd(htfile, clock=clock)
    assert auth.verify("alice", "wonderland") and auth.problem is None
    saved = htfile.read_bytes()
    htfile.unlink()
    with capturedLogs() as events:
        assert not auth.verify("alice", "wonderland")  # remembered successes are gone too
        assert not auth.verify("alice", "wonderland")
        clock.advance(30)
        assert not auth.verify("bob", "builder")
    assert auth.users == frozenset()
    assert "was removed" in (auth.problem or "") and "spoold user add" in (auth.problem or "")
    [line] = errors(events)
    assert "every upload is refused" in line and str(htfile) in line
    with capturedLogs() as events:
        clock.advance(31)
        assert not auth.verify("alice", "wonderland")
    assert len(errors(events)) == 1  # a minute later, said again
    htfile.write_bytes(saved)
    assert auth.verify("alice", "wonderland") and auth.problem is None


def test_a_broken_edit_lets_nobody_in_and_reload_says_why(htfile: Path) -> None:
    auth = Htpasswd(htfile)
    assert auth.verify("alice", "wonderland")
    htfile.write_bytes(b"\xff\xfe not utf-8 :x\n")
    with capturedLogs() as events, pytest.raises(ConfigError, match="malformed"):
        auth.reload()  # SIGHUP
    assert errors(events)
    assert not auth.verify("alice", "wonderland")
    assert "malformed" in (auth.problem or "")
    with pytest.raises(ConfigError, match="does not exist.*spoold user add"):
        htfile.unlink()
        auth.reload()
    assert not auth.verify("alice", "wonderland")
    add_user(htfile, "alice", "fixed", rounds=4)
    assert auth.verify("alice", "fixed") and auth.problem is None


def test_a_broken_file_is_not_parsed_again_on_every_request(htfile: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    auth = Htpasswd(htfile)
    htfile.write_bytes(b"\xff\xfe not utf-8 :x\n")
    parsed: list[Path] = []
    real = htpasswd_module.parse_file
    monkeypatch.setattr(htpasswd_module, "parse_file", lambda data, path: parsed.append(path) or real(data, path))
    for _ in range(3):
        assert not auth.verify("alice", "wonderland")
    assert len(parsed) == 1


class CountingContext:
    """passlib's context, counting the hashes that really ran (a verify that raises did
    no hashing) and the stand-in verifications."""

    def __init__(self, real: CryptContext) -> None:
        self.real = real
        self.hashes = 0

    def verify(self, secret: bytes, entry: str) -> bool:
        ok = self.real.verify(secret, entry)
        self.hashes += 1
        return bool(ok)

    def dummy_verify(self, elapsed: float = 0) -> bool:
        self.hashes += 1
        return False

    def __getattr__(self, name: str) -> object:
        return getattr(self.real, name)


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> CountingContext:
    counting = CountingContext(htpasswd_module.CRYPT)
    monkeypatch.setattr(htpasswd_module, "CRYPT", counting)
    return counting


@pytest.mark.parametrize(
    ("user", "password"),
    [
        ("nobody", "wonderland"),            # no such user
        ("alice", "wrong"),                  # a wrong password
        ("alice", "wonder\x00land"),         # a NUL, which bcrypt refuses in no time
        ("eve", "unsalted"),                 # {SHA}: never matches
        ("mallory", "plaintext"),            # plain text: never matches
        ("trent", "des-pw"),                 # DES crypt: never matches
        ("oscar", "broken"),                 # a malformed bcrypt entry
        ("x" * 2000, "wonderland"),          # a user name too long to look at
        ("alice", "x" * 2000),               # a password too long to look at
    ],
)
def test_every_failure_costs_one_slow_hash(htfile: Path, hashes: CountingContext, user: str, password: str) -> None:
    """No timing: the answer to any failure did the same work as a wrong password for a
    real bcrypt user (exactly one slow hash), so its speed lists no users or schemes."""
    with htfile.open("a") as f:
        f.write("trent:" + des_crypt.hash("des-pw") + "\n" + "oscar:$2y$12$short\n")
    auth = Htpasswd(htfile)
    assert not auth.verify(user, password)
    assert hashes.hashes == 1
    assert auth.slow_checks == 1


def test_every_failure_costs_one_slow_hash_when_the_file_is_gone(htfile: Path, hashes: CountingContext) -> None:
    auth = Htpasswd(htfile)
    htfile.unlink()
    assert not auth.verify("alice", "wonderland")
    assert hashes.hashes == 1


def test_the_stand_in_hash_costs_what_a_real_entry_costs() -> None:
    """dummy_verify checks against a hash of the context's default scheme and settings:
    bcrypt with the rounds `spoold user add` writes."""
    import inspect

    assert htpasswd_module.CRYPT.default_scheme() == "bcrypt"
    default_rounds = inspect.signature(add_user).parameters["rounds"].default
    assert htpasswd_module.CRYPT.hash("x").startswith(f"$2b${default_rounds:02d}$")


def test_opening_a_missing_file_says_how_to_create_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="spoold user add NAME --htpasswd"):
        Htpasswd(tmp_path / "missing")
    with pytest.raises(ConfigError, match="htpasswd"):
        Htpasswd(tmp_path)


def test_overlong_credentials_are_refused_without_looking_at_the_entry(htfile: Path, hashes: CountingContext) -> None:
    auth = Htpasswd(htfile)
    assert not auth.verify("alice", "x" * 5000)
    assert hashes.hashes == 1  # the stand-in only (see test_every_failure_costs_one_slow_hash)


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
        (b64("alice:wonderland"), Credentials(user="alice", password="wonderland")),
        (b64("alice:with:colons"), Credentials(user="alice", password="with:colons")),
        (b64("alice:"), Credentials(user="alice", password="")),
        (b64("ünï:cödé"), Credentials(user="ünï", password="cödé")),
        ("basic " + base64.b64encode(b"a:b").decode(), Credentials(user="a", password="b")),
        (b"Basic " + base64.b64encode("é:x".encode("latin-1")), Credentials(user="é", password="x")),
        (None, None),
        (b"", None),
        (b"Bearer token", Credentials(token="token")),
        (b"Basic", None),
        (b"Basic !!!notbase64", None),
        (b64("no-colon"), None),
        (b64(":password-without-user"), None),
        (b"Basic " + b"A" * 10_000, None),
    ],
)
def test_parse_basic(header: bytes | str | None, expected: Credentials | None) -> None:
    assert parse_authorization(header) == expected


def test_credentials_repr_hides_the_password() -> None:
    assert "wonderland" not in repr(Credentials(user="alice", password="wonderland"))


def test_password_input() -> None:
    assert password_from_stream(io.StringIO("secret\nrest\n")) == "secret"
    assert password_from_stream(io.StringIO("secret\r\n")) == "secret"
    answers = iter(["pw", "pw"])
    assert prompt_password("alice", ask=lambda prompt: next(answers)) == "pw"
    answers = iter(["pw", "other"])
    with pytest.raises(BadCredentials, match="do not match"):
        prompt_password("alice", ask=lambda prompt: next(answers))


@pytest.mark.parametrize("answers", [[], ["pw"]])
def test_ctrl_d_at_the_prompt_is_no_password(answers: list[str]) -> None:
    """getpass raises EOFError on Ctrl-D: a BadCredentials (one line, status 1), not a bug."""
    given = iter(answers)

    def ask(prompt: str) -> str:
        try:
            return next(given)
        except StopIteration:
            raise EOFError from None

    err = io.StringIO()
    with pytest.raises(BadCredentials, match="no password given"):
        prompt_password("alice", ask=ask, err=err)
    assert err.getvalue() == "\n"  # the prompt's line ends before the error is printed


def test_add_user_creates_missing_folders_private(tmp_path: Path) -> None:
    """`spoold user add --htpasswd FILE`'s help says "created if missing": the folders too."""
    path = tmp_path / "etc" / "spoold" / "htpasswd"
    before = stat.S_IMODE(os.stat(tmp_path).st_mode)
    assert add_user(path, "alice", "first", rounds=4) is True
    assert Htpasswd(path).verify("alice", "first")
    for folder in (tmp_path / "etc", tmp_path / "etc" / "spoold"):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700 & ~_umask()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(tmp_path).st_mode) == before  # an existing folder is left alone


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def test_remembered_is_memory_only_and_follows_the_file(tmp_path):
    clock = FakeClock()
    path = tmp_path / "htpasswd"
    path.write_text(f"alice:{fast_bcrypt('secret')}\n")
    auth = Htpasswd(path, clock=clock)
    assert not auth.remembered("alice", "secret")  # never checked: ask verify
    assert auth.verify("alice", "secret")
    assert auth.remembered("alice", "secret") and not auth.remembered("alice", "other")
    clock.advance(2)  # the file was last looked at too long ago: verify (one stat) again
    assert not auth.remembered("alice", "secret")
    assert auth.verify("alice", "secret") and auth.remembered("alice", "secret")
