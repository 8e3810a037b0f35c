"""Index pages of local storage stay in memory until inotify reports their file changed."""

from __future__ import annotations

from pathlib import Path

import pytest
from testlib.web_harness import make_site
from twisted.internet.testing import MemoryReactorClock

from spoold.spool.queue import Spool
from spoold.storage.local import LocalStorage
from spoold.testing import request
from spoold.web.pagewatch import PageWatch, remote_filesystem


class CountingStorage(LocalStorage):
    def __init__(self, root: Path) -> None:
        super().__init__(root, fsync=False)
        self.reads: list[str] = []

    def read_page(self, key: str):  # type: ignore[no-untyped-def]
        self.reads.append(key)
        return super().read_page(key)


@pytest.fixture
def setup(tmp_path: Path, spool: Spool):  # type: ignore[no-untyped-def]
    storage = CountingStorage(tmp_path / "storage")
    storage.put_page("simple/demo/index.html", b"<html>v1</html>", 1)
    storage.put_page("simple/index.html", b"<html>root 1</html>", 1)
    reactor = MemoryReactorClock()
    site = make_site(tmp_path, spool, storage=storage, reactor=reactor)
    watch = site.resource.children[b"simple"].watch
    assert isinstance(watch, PageWatch) and watch in reactor.getReaders()
    yield storage, reactor, site, watch
    watch.close()


def test_a_watched_page_is_read_once_and_kept_past_the_ttl(setup) -> None:  # type: ignore[no-untyped-def]
    storage, reactor, site, watch = setup
    for _ in range(3):
        assert request(site, "GET", "/simple/demo/").body == b"<html>v1</html>"
        reactor.advance(site.page_cache.ttl * 10)
        watch.doRead()  # nothing changed: nothing to report
    assert storage.reads == ["simple/demo/index.html"]


def test_a_change_by_anyone_shows_at_once(setup) -> None:  # type: ignore[no-untyped-def]
    storage, reactor, site, watch = setup
    assert request(site, "GET", "/simple/demo/").body == b"<html>v1</html>"
    assert request(site, "GET", "/simple/").body == b"<html>root 1</html>"
    # Another process (a yank, a worker of another spool) replaces the pages; no spool
    # event tells this one. The kernel queued the events before put_page returned.
    other = LocalStorage(storage.root, fsync=False)
    other.put_page("simple/demo/index.html", b"<html>v2</html>", 2)
    other.put_page("simple/index.html", b"<html>root 2</html>", 2)
    watch.doRead()
    assert request(site, "GET", "/simple/demo/").body == b"<html>v2</html>"
    assert request(site, "GET", "/simple/").body == b"<html>root 2</html>"
    # Written in place, not renamed (a hand edit): seen too.
    (storage.root / "simple/demo/index.html").write_bytes(b"<html>v3</html>")
    watch.doRead()
    assert request(site, "GET", "/simple/demo/").body == b"<html>v3</html>"
    # The project's folder removed: the page goes, and its watch with it.
    (storage.root / "simple/demo/index.html").unlink()
    (storage.root / "simple/demo").rmdir()
    watch.doRead()
    assert request(site, "GET", "/simple/demo/").status == 404


def test_a_change_right_after_the_read_is_reported(tmp_path: Path, spool: Spool) -> None:
    """The page changes the moment after the thread read it: that request gets the old
    bytes, and the event that follows drops them (the folder was watched before the read)."""

    class Racing(CountingStorage):
        def read_page(self, key):  # type: ignore[no-untyped-def]
            page = super().read_page(key)
            if len(self.reads) == 1:
                LocalStorage(self.root, fsync=False).put_page(key, b"<html>v2</html>", 2)
            return page

    storage = Racing(tmp_path / "storage")
    storage.put_page("simple/demo/index.html", b"<html>v1</html>", 1)
    site = make_site(tmp_path, spool, storage=storage, reactor=MemoryReactorClock())
    watch = site.resource.children[b"simple"].watch
    try:
        assert request(site, "GET", "/simple/demo/").body == b"<html>v1</html>"
        watch.doRead()
        assert request(site, "GET", "/simple/demo/").body == b"<html>v2</html>"
    finally:
        watch.close()


def test_unwatched_storage_expires_as_before(tmp_path: Path, spool: Spool) -> None:
    """Where a watch cannot be placed (here: the watch limit), pages expire after ttl."""
    storage = CountingStorage(tmp_path / "storage")
    storage.put_page("simple/demo/index.html", b"<html>v1</html>", 1)
    reactor = MemoryReactorClock()
    site = make_site(tmp_path, spool, storage=storage, reactor=reactor)
    watch = site.resource.children[b"simple"].watch

    def refused(path: bytes) -> int:
        raise OSError(28, "No space left on device")

    watch._inotify.add = refused
    try:
        assert request(site, "GET", "/simple/demo/").status == 200
        assert request(site, "GET", "/simple/demo/").status == 200
        reactor.advance(site.page_cache.ttl)
        assert request(site, "GET", "/simple/demo/").status == 200
        assert len(storage.reads) == 2
    finally:
        watch.close()


MOUNTS = """\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
40 27 0:50 / /srv/index rw,relatime - nfs4 fileserver:/export rw
41 27 0:51 / /srv/fuse rw,relatime - fuse.sshfs host:/x rw
42 27 0:52 / /srv/my\\040disk rw,relatime - xfs /dev/vdb rw
"""


@pytest.mark.parametrize(("path", "remote"), [
    ("/var/lib/spoold", False),
    ("/srv/index", True),
    ("/srv/index/storage", True),
    ("/srv/indexes", False),
    ("/srv/fuse/storage", True),
    ("/srv/my disk/storage", False),
])
def test_remote_filesystems_are_not_watched(path: str, remote: bool) -> None:
    assert remote_filesystem(Path(path), MOUNTS) is remote
