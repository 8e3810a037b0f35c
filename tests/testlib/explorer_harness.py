"""A site with the explorer over an in-memory storage, users, and a browser-like client."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twisted.internet.testing import MemoryReactorClock

from spoold.access.accounts import add_user
from spoold.access.htpasswd import Htpasswd
from spoold.config import Settings
from spoold.index import publish
from spoold.spool.queue import Spool
from spoold.testing import FakeWaiter, MemoryStorage, Response, request
from spoold.testing.run import run_now
from spoold.web.site import SpooldSite, build_site
from testlib.explorerdists import rich_distribution

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


def explorer_site(tmp_path: Path, *, storage: MemoryStorage | None = None, read: str = "public",
                  users: dict[str, str] | None = None, admins: tuple[str, ...] = (),
                  page_cache: float = 10.0) -> tuple[SpooldSite, MemoryStorage]:
    storage = storage if storage is not None else MemoryStorage()
    htpasswd = tmp_path / "htpasswd"
    for user, password in (users or {}).items():
        add_user(htpasswd, user, password, rounds=4)
    auth = Htpasswd(htpasswd) if users else None
    spool = Spool.create(tmp_path / "spool")
    settings = Settings(spool=str(spool.root), storage="memory", read=read, admins=admins,
                        data_dir=str(tmp_path / "data"), page_cache=page_cache)
    site = build_site(storage_reader=storage, spool=spool, waiter=FakeWaiter(), auth=auth,
                      settings=settings, reactor=MemoryReactorClock(), threadpool=None, run=run_now)
    return site, storage


def publish_rich(storage: MemoryStorage, tmp_path: Path, name: str, version: str, *,
                 uploader: Any = None, now: datetime = T0, **kwargs: Any) -> None:
    folder = tmp_path / "dists"
    folder.mkdir(exist_ok=True)
    dist, path = rich_distribution(name, version, folder, **kwargs)
    publish(storage, dist, path, now=now, uploader=uploader, client="twine/6.0")


@dataclass
class Browser:
    """Cookies kept between requests, and the headers a browser sends (``Accept: text/html``,
    ``Origin`` on POSTs)."""

    site: SpooldSite
    cookies: dict[str, str] = field(default_factory=dict)
    origin: str | None = "http://index.test"

    def _headers(self, extra: dict[str, str] | None) -> dict[str, str]:
        headers = {"Accept": BROWSER, "User-Agent": "Mozilla/5.0 (test)"}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        headers.update(extra or {})
        return headers

    def _keep(self, response: Response) -> Response:
        for value in response.header_values("set-cookie"):
            name, _, rest = value.partition("=")
            content = rest.split(";", 1)[0]
            if "Max-Age=0" in value:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = content
        return response

    def get(self, path: str, headers: dict[str, str] | None = None) -> Response:
        return self._keep(request(self.site, "GET", path, self._headers(headers)))

    def post(self, path: str, fields: dict[str, str], headers: dict[str, str] | None = None) -> Response:
        body = urlencode(fields).encode()
        extra = {"Content-Type": "application/x-www-form-urlencoded"}
        if self.origin is not None:
            extra["Origin"] = self.origin
        extra.update(headers or {})
        return self._keep(request(self.site, "POST", path, self._headers(extra), body))

    def login(self, user: str, password: str, next_path: str = "/") -> Response:
        form = self.get(f"/login?next={next_path}")
        return self.post("/login", {"user": user, "password": password, "next": next_path,
                                    "csrf": csrf_of(form.text)})


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]*)"', html)
    assert match, "no CSRF field in the page"
    return match[1]
