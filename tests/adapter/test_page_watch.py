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


def test_the_warmer_reads_every_project_once_at_start(tmp_path: Path, spool: Spool) -> None:
    from spoold.testing import run_now
    from spoold.web.pagewatch import Warmer

    storage = CountingStorage(tmp_path / "storage")
    for name in ("alpha", "beta", "gamma"):
        storage.put_page(f"simple/{name}/index.html", f"<html>{name}</html>".encode(), 1)
        storage.put_page(f"simple/{name}/index.v1.json", f'{{"name": "{name}"}}'.encode(), 1)
    reactor = MemoryReactorClock()
    site = make_site(tmp_path, spool, storage=storage, reactor=reactor)
    simple = site.resource.children[b"simple"]
    # build_site starts one when the reactor runs; this one is driven by the test.
    assert any(hook[0].__self__.__class__ is Warmer for hook in reactor.whenRunningHooks)
    warmer = Warmer(simple.watch, storage, site.page_cache, run_now, chunk=2)
    try:
        warmer.start()
        assert warmer.done.called and len(storage.reads) == 6
        for name in ("alpha", "beta", "gamma"):
            assert request(site, "GET", f"/simple/{name}/").body == f"<html>{name}</html>".encode()
        assert len(storage.reads) == 6  # all from memory
        storage.put_page("simple/beta/index.html", b"<html>beta 2</html>", 2)
        simple.watch.doRead()
        assert request(site, "GET", "/simple/beta/").body == b"<html>beta 2</html>"
    finally:
        simple.watch.close()


def test_the_warmer_stops_before_the_cache_would_push_pages_out(tmp_path: Path, spool: Spool) -> None:
    from spoold.http.pagecache import PageCache
    from spoold.testing import run_now
    from spoold.web.pagewatch import Warmer

    storage = CountingStorage(tmp_path / "storage")
    for i in range(20):
        storage.put_page(f"simple/p{i:02d}/index.html", b"<html>%d</html>" % i, 1)
    cache = PageCache(10, lambda: 0.0, max_bytes=2000)
    watch = PageWatch(storage.root, cache)
    try:
        warmer = Warmer(watch, storage, cache, run_now, chunk=2)
        warmer.start()
        assert warmer.done.called and 0 < len(cache) < 20
        assert cache.held_bytes <= cache.max_bytes
    finally:
        watch.close()
