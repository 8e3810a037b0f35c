"""Access: tokens, roles, decisions, throttling, and their records in the storage."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from spoold.access.events import Event
from spoold.access.policy import may_manage, may_read, may_see, may_upload, reads_everything
from spoold.access.principal import ANONYMOUS, TRUSTED, Kind, Principal, Scope
from spoold.access.roles import Role, Roles
from spoold.access.store import AccessStore
from spoold.access.throttle import LoginThrottle
from spoold.access.tokens import BadToken, Token, new_token, parse_expiry, split_token
from spoold.storage import Storage
from testlib.backends import make_storage, second_handle

NOW = datetime(2027, 1, 10, 12, 0, tzinfo=UTC)
ALICE = Principal.for_user("alice")
ADMIN = Principal.for_user("root", admin=True)


@pytest.fixture(params=["memory", "local"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    return make_storage(request.param, tmp_path)


# -- tokens --------------------------------------------------------------------------------


def test_a_token_is_shown_once_and_stored_as_a_hash() -> None:
    token, secret = new_token("alice", ["upload"], ["Demo_Pkg"], description="CI", now=NOW)
    token_id, raw = split_token(secret)
    assert token_id == token.id and secret == f"spoold_{token.id}_{raw}"
    assert token.matches(raw) and not token.matches(raw[:-1] + ("A" if raw[-1] != "A" else "B"))
    assert raw not in str(token.to_json()) and raw not in repr(token)
    assert token.projects == frozenset({"demo-pkg"}) and token.scopes == frozenset({Scope.UPLOAD})
    assert Token.from_json(token.to_json()) == token
    assert all(c.isalnum() or c in "-_" for c in secret)  # usable as a URL's user name


def test_token_listing_has_the_contract_fields_and_no_secret() -> None:
    token, _ = new_token("alice", ["read"], now=NOW)
    listing = token.listing(last_used=None)
    assert set(listing) == {"id", "user", "scopes", "projects", "created", "expires",
                            "last_used", "description"}
    assert listing["expires"] is None and listing["projects"] == [] and listing["scopes"] == ["read"]


def test_expiry_by_days_or_date_and_its_message() -> None:
    assert parse_expiry(None, NOW) is None
    assert parse_expiry("30", NOW) == NOW + timedelta(days=30)
    through = parse_expiry("2027-01-31", NOW)
    assert through == datetime(2027, 2, 1, tzinfo=UTC)
    token, _ = new_token("alice", ["read"], expires=through, now=NOW)
    assert not token.expired(datetime(2027, 1, 31, 23, 59, tzinfo=UTC))
    assert token.expired(datetime(2027, 2, 1, tzinfo=UTC))
    assert f"token {token.id} expired on 2027-01-31" in token.expiry_message()
    for bad in ("0", "yesterday", "2026-01-01", "99999"):
        with pytest.raises(BadToken):
            parse_expiry(bad, NOW)


def test_bad_token_requests() -> None:
    with pytest.raises(BadToken, match="scope"):
        new_token("alice", ["admin"])
    with pytest.raises(BadToken, match="not a project name"):
        new_token("alice", ["read"], ["../etc"])
    assert split_token("hunter2") is None and split_token("spoold_xyz_abc") is None


# -- decisions -----------------------------------------------------------------------------


def token_principal(scopes: set[str], projects: set[str] = frozenset()) -> Principal:
    token, _ = new_token("alice", scopes, projects, now=NOW)
    return token.principal(admin=False)


def test_reads() -> None:
    limited = token_principal({"read"}, {"demo"})
    assert may_read(ANONYMOUS, "demo", public=True)
    assert may_read(ANONYMOUS, None, public=False).status == 401
    assert may_read(ALICE, "demo", public=False)
    assert may_read(limited, "demo", public=False) and may_read(limited, None, public=False)
    assert may_read(limited, "other", public=False).status == 404  # absent, not forbidden
    assert may_see(limited, "demo", public=False) and not may_see(limited, "other", public=False)
    assert not may_see(ANONYMOUS, "demo", public=False) and may_see(ANONYMOUS, "demo", public=True)


def test_who_reads_everything() -> None:
    """The one answer a reverse proxy may cache by credentials alone: it must agree with
    may_read on every project for everyone it says True of."""
    whole, limited = token_principal({"read"}, set()), token_principal({"read"}, {"demo"})
    assert reads_everything(ALICE, public=False) and reads_everything(ADMIN, public=False)
    assert reads_everything(whole, public=False) and reads_everything(TRUSTED, public=False)
    assert not reads_everything(limited, public=False) and not reads_everything(ANONYMOUS, public=False)
    assert reads_everything(ANONYMOUS, public=True) and reads_everything(limited, public=True)
    for who in (ALICE, ADMIN, whole, TRUSTED, limited, ANONYMOUS):
        for public in (False, True):
            if reads_everything(who, public=public):
                assert all(may_read(who, p, public=public) for p in ("demo", "other", None))


def test_uploads() -> None:
    roles = Roles(owners=frozenset({"bob"}), maintainers=frozenset({"carol"}))
    assert may_upload(ANONYMOUS, "demo", None, exists=False).status == 401
    assert may_upload(ALICE, "new", None, exists=False)  # creates it, becomes its owner
    refused = may_upload(ALICE, "demo", roles, exists=True)
    assert refused.status == 403
    assert refused.message == ("alice may not upload to project demo: ask an owner (bob) for "
                               "the maintainer role")
    assert may_upload(Principal.for_user("carol"), "demo", roles, exists=True)
    assert may_upload(Principal.for_user("bob"), "demo", roles, exists=True)
    assert may_upload(ADMIN, "demo", roles, exists=True)
    assert may_upload(TRUSTED, "demo", roles, exists=True)
    unowned = may_upload(ALICE, "old", None, exists=True)
    assert unowned.status == 403 and "no owner yet" in unowned.message


def test_uploads_with_tokens() -> None:
    roles = Roles(owners=frozenset({"alice"}))
    reader = may_upload(token_principal({"read"}), "demo", roles, exists=True)
    assert reader.status == 403 and "needs a token with the upload scope" in reader.message
    elsewhere = may_upload(token_principal({"upload"}, {"demo"}), "other", None, exists=False)
    assert elsewhere.status == 403 and "allows upload and read on demo, not other" in elsewhere.message
    assert may_upload(token_principal({"upload"}, {"demo"}), "demo", roles, exists=True)


def test_managing() -> None:
    roles = Roles(owners=frozenset({"bob"}), maintainers=frozenset({"alice"}))
    assert may_manage(Principal.for_user("bob"), "demo", roles)
    refused = may_manage(ALICE, "demo", roles)
    assert refused.status == 403 and "only its owners (bob)" in refused.message
    assert may_manage(ADMIN, "demo", None)
    assert may_manage(token_principal({"upload"}), "demo", roles).status == 403
    assert may_manage(ANONYMOUS, "demo", roles).status == 401


def test_roles_changes() -> None:
    roles = Roles().with_role("bob", Role.OWNER).with_role("alice", Role.MAINTAINER)
    assert roles.role_of("alice") is Role.MAINTAINER and roles.may_manage("bob")
    promoted = roles.with_role("alice", Role.OWNER)
    assert promoted.owners == {"alice", "bob"} and promoted.maintainers == frozenset()
    assert promoted.with_role("alice", Role.OWNER) is promoted
    assert promoted.without("alice").owners == {"bob"} and roles.without("zed") is roles
    assert Roles.from_json(roles.to_json()) == roles
    assert roles.listing() == [{"user": "bob", "role": "owner"}, {"user": "alice", "role": "maintainer"}]


# -- throttling ----------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_more_than_ten_failures_a_minute_block_until_the_minute_is_over() -> None:
    clock = Clock()
    throttle = LoginThrottle(clock=clock)
    for _ in range(10):
        throttle.failed("10.0.0.9", "alice")
    assert throttle.retry_after("10.0.0.9", None) is None  # ten are allowed
    throttle.failed("10.0.0.9", "alice")
    clock.now += 20
    assert throttle.retry_after("10.0.0.9", "zed") == 40
    assert throttle.retry_after("192.0.2.7", "alice") == 40  # for one user, from anywhere
    assert throttle.retry_after("192.0.2.7", "bob") is None  # others are not slowed
    clock.now += 40
    assert throttle.retry_after("10.0.0.9", "alice") is None


def test_the_throttle_is_quiet_until_a_failure() -> None:
    throttle = LoginThrottle(clock=Clock())
    assert throttle.quiet
    throttle.failed("10.0.0.9", None)
    assert not throttle.quiet


def test_the_throttle_is_bounded() -> None:
    throttle = LoginThrottle(clock=Clock(), max_keys=100)
    for i in range(1000):
        throttle.failed(f"a{i}", None)
    assert len(throttle._windows) == 100


# -- records in the storage ----------------------------------------------------------------


def test_tokens_in_the_storage(storage: Storage) -> None:
    store = AccessStore(storage)
    token, _ = new_token("alice", ["read"], now=NOW)
    other, _ = new_token("bob", ["upload"], ["demo"], now=NOW)
    store.add_token(token)
    store.add_token(other)
    assert store.token(token.id) == token and store.token("0" * 16) is None
    assert [t.id for t in store.tokens("alice")] == [token.id] and len(store.tokens()) == 2
    assert store.last_used(token.id) is None
    store.mark_used(token.id, NOW)
    assert store.last_used(token.id) == NOW
    assert AccessStore(second_handle(storage)).token(token.id) == token  # another host
    assert store.revoke_token(token.id) == token
    assert store.token(token.id) is None and store.revoke_token(token.id) is None


def test_exactly_one_of_two_concurrent_creators_owns_a_project(storage: Storage) -> None:
    results: dict[str, tuple[Roles | None, bool]] = {}
    barrier = threading.Barrier(2)

    def create(user: str) -> None:
        store = AccessStore(second_handle(storage))
        barrier.wait()
        results[user] = store.change_roles(
            "demo", lambda current: current if current is not None else Roles(owners=frozenset({user})))

    threads = [threading.Thread(target=create, args=(u,)) for u in ("alice", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [u for u, (_, wrote) in results.items() if wrote]
    assert len(winners) == 1
    assert AccessStore(storage).roles("demo").owners == {winners[0]}


def test_events_are_listed_in_order_by_project_and_since(storage: Storage) -> None:
    store = AccessStore(storage)
    for i, project in enumerate(["a", "b", "a"]):
        store.record(Event("upload", "alice", project=project, filename=f"{project}-{i}.whl",
                           time=NOW + timedelta(days=i)))
    assert [e.filename for e in store.events()] == ["a-0.whl", "b-1.whl", "a-2.whl"]
    assert [e.filename for e in store.events("a")] == ["a-0.whl", "a-2.whl"]
    assert [e.filename for e in store.events(since=NOW + timedelta(hours=1))] == ["b-1.whl", "a-2.whl"]
    with pytest.raises(ValueError):
        Event("delete-everything", "alice")


def test_principal_descriptions() -> None:
    token = token_principal({"read"})
    assert token.kind is Kind.TOKEN and token.describe() == f"token {token.token_id} of alice"
    assert ALICE.describe() == "alice" and TRUSTED.describe() == "spool (drop)"
    assert token.can(Scope.READ) and not token.can(Scope.UPLOAD)
    assert token_principal({"upload"}).can(Scope.READ)


def test_a_first_start_creates_an_admin_with_a_private_password_file(tmp_path: Path) -> None:
    import stat

    from spoold.access.first_start import ensure_a_user
    from spoold.access.htpasswd import Htpasswd

    first = ensure_a_user(tmp_path / "etc" / "htpasswd", tmp_path / "data", rounds=4)
    assert first is not None and first.user == "admin"
    assert stat.S_IMODE(first.password_file.stat().st_mode) == 0o600
    password = first.password_file.read_text().strip()
    assert len(password) >= 20 and Htpasswd(tmp_path / "etc" / "htpasswd").verify("admin", password)
    assert ensure_a_user(tmp_path / "etc" / "htpasswd", tmp_path / "data") is None  # users exist
