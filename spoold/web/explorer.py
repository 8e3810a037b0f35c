"""The explorer's read pages: ``/`` (home), ``/search/``, ``/project/<p>/[<version>/]``, ``/static/``.

Serving a project page reads two small stored documents (the manifest, which is the PEP
691 page, and the release view with the description already rendered, see
:mod:`spoold.index.explorer_docs`), renders the page's main part once and keeps it in
memory (:class:`~spoold.explorer.cache.ExplorerCache`, ``page_cache`` seconds, dropped
when this process publishes into the project); per request only the small shell with
the reader's login state is rendered. Search and the home page read the in-memory index
of :class:`SearchService`, refreshed from the catalog within ``page_cache`` seconds.

A project the reader may not see (a token limited to other projects) is answered exactly
as one that does not exist, after the same reads; it is missing from search and home.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name
from packaging.version import Version
from twisted.internet.defer import Deferred, succeed
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from spoold.access.first_start import ADMIN, PASSWORD_FILE
from spoold.access.principal import Kind
from spoold.explorer.catalog import CatalogReader
from spoold.explorer.pages import page, project_main, shell, static_file
from spoold.explorer.release import ReleaseView, shown_version
from spoold.explorer.search import SearchIndex
from spoold.explorer.session import first_login_seen
from spoold.http.paths import decode_segments, is_project_name
from spoold.index.manifest import Manifest
from spoold.index.pages import parse_project_json
from spoold.storage.base import Storage
from spoold.storage.keys import project_json_key, release_view_key
from spoold.threads import Run
from spoold.web.explorer_kit import Explorer, Who
from spoold.web.front import Front
from spoold.web.responses import LeafResource

__all__ = ["Home", "Projects", "Search", "SearchService", "Static"]


class SearchService:
    """The search index, rebuilt from the catalog in a thread when it is older than ``ttl``
    (readers keep the previous one meanwhile; only the very first request waits)."""

    def __init__(self, storage: Storage, run: Run, *, ttl: float, clock: Any) -> None:
        self.catalog = CatalogReader(storage)
        self.run = run
        self.ttl = ttl
        self.clock = clock
        self.index: SearchIndex | None = None
        self.loaded_at = -math.inf
        self._waiting: list[Deferred[SearchIndex]] | None = None

    def stale(self, _project: object = None) -> None:
        self.loaded_at = -math.inf

    def current(self) -> Deferred[SearchIndex]:
        if self.index is not None and self.clock() - self.loaded_at < self.ttl:
            return succeed(self.index)
        d: Deferred[SearchIndex] = Deferred()
        if self._waiting is None:
            self._waiting = []
            started = self.clock()
            self.run(self._rebuild).addCallbacks(lambda new: self._done(new, started), self._failed)
        if self.index is not None:
            return succeed(self.index)
        self._waiting.append(d)
        return d

    def _rebuild(self) -> SearchIndex | None:
        changed = self.catalog.refresh()
        return SearchIndex(self.catalog.entries()) if changed or self.index is None else None

    def _done(self, new: SearchIndex | None, started: float) -> None:
        if new is not None:
            self.index = new
        self.loaded_at = started
        waiting, self._waiting = self._waiting or [], None
        for d in waiting:
            d.callback(self.index)

    def _failed(self, failure: Any) -> None:
        waiting, self._waiting = self._waiting or [], None
        for d in waiting:
            d.errback(failure)


def first_run_file(storage: Storage, data_dir: Path, users: frozenset[str]) -> str | None:
    """The generated admin's password file while that admin never logged in on the web."""
    path = data_dir / PASSWORD_FILE
    if ADMIN not in users or not path.exists() or first_login_seen(storage, ADMIN):
        return None
    return str(path)


class Home(Front):
    """``/``: the home page (GET), uploads (POST, as before)."""

    def __init__(self, upload: Any, explorer: Explorer, search: SearchService) -> None:
        super().__init__(upload)
        self.ex = explorer
        self.search = search

    def render_GET(self, request: Request) -> Any:
        if request.postpath not in ([], [b""]):
            return super().render_GET(request)
        return self.ex.serve(request, lambda: self._home(request))

    async def _first_run(self) -> str | None:
        keeper = getattr(self.ex.guard, "keeper", None)
        if keeper is None or keeper.admin_seen or self.ex.guard.authenticator is None:
            return None
        cached = self.ex.cache.get((None, "first-run"))
        if cached is not None:
            return cached or None
        ticket = self.ex.cache.ticket()
        users = self.ex.guard.authenticator.passwords.users
        found = await self.ex.run(first_run_file, self.ex.storage, self.ex.data_dir, users)
        if found is None and ADMIN in users:
            keeper.admin_seen = True
        self.ex.cache.put((None, "first-run"), found or "", 1, ticket)
        return found

    async def _home(self, request: Request) -> None:
        ex = self.ex
        who = await ex.who(request)
        if who is None:
            return
        first = await self._first_run()
        first_run = {"user": ADMIN, "path": first} if first else None
        if not ex.public and not who.principal.authenticated:
            if first_run is None:
                ex.must_log_in(request)
                return
            ex.send(request, page("home", "Welcome", ex.nav(who), first_run=first_run, show_index=False))
            return
        index = await self.search.current()
        visible = ex.visible(who.principal)
        ex.send(request, page("home", "Home", ex.nav(who), first_run=first_run, show_index=True,
                              count=index.count(visible), recent=index.recent(10, visible),
                              base=ex.base(request)))


class Search(LeafResource):
    def __init__(self, explorer: Explorer, search: SearchService) -> None:
        super().__init__()
        self.ex = explorer
        self.search = search

    def render_GET(self, request: Request) -> int:
        return self.ex.serve(request, lambda: self._search(request))

    async def _search(self, request: Request) -> None:
        ex = self.ex
        if request.postpath not in ([], [b""]):
            ex.message(request, None, 404, "Not found", "There is no such page.")
            return
        who = await ex.reader(request)
        if who is None:
            return
        query = _arg(request, b"q").strip()[:200]
        try:
            number = max(1, int(_arg(request, b"page") or 1))
        except ValueError:
            number = 1
        results = None
        if query:
            index = await self.search.current()
            results = index.search(query, number, visible=ex.visible(who.principal))
        ex.send(request, page("search", f"Search: {query}" if query else "Search", ex.nav(who, query),
                              query=query, results=results))


class Projects(Resource):
    """``/project/...``: project and release pages here; manage pages in ``manage``."""

    isLeaf = True

    def __init__(self, explorer: Explorer, manage: Any) -> None:
        super().__init__()
        self.ex = explorer
        self.manage = manage

    def render(self, request: Request) -> Any:
        ex = self.ex
        segments = decode_segments(request.postpath)
        if not segments or not is_project_name(segments[0]):
            return ex.serve(request, lambda: self._absent(request))
        name, rest = segments[0], segments[1:]
        project = canonicalize_name(name)
        if rest[:1] == ["manage"]:
            if project != name:
                ex.redirect(request, f"/project/{project}/manage/", status=301)
                return NOT_DONE_YET
            return self.manage.render_for(request, project, rest[1:])
        if request.method not in (b"GET", b"HEAD"):
            ex.message(request, None, 405, "Method not allowed", "Use GET here.")
            return NOT_DONE_YET
        if len(rest) > 2 or (len(rest) == 2 and (not rest[0] or rest[1] != "")):
            return ex.serve(request, lambda: self._absent(request))
        asked = rest[0] if rest and rest[0] else None
        version = None
        if asked is not None:
            try:
                version = str(Version(asked))
            except ValueError:  # InvalidVersion, or more digits than int() takes
                return ex.serve(request, lambda: self._absent(request))
        if project != name or version != asked or rest[-1:] != [""]:
            ex.redirect(request, f"/project/{project}/" + (f"{version}/" if version else ""), status=301)
            return NOT_DONE_YET
        return ex.serve(request, lambda: self._page(request, project, version))

    async def _absent(self, request: Request) -> None:
        who = await self.ex.reader(request)
        if who is not None:
            self.ex.message(request, who, 404, "Not found", "There is no such project or release here.")

    async def manifest(self, project: str) -> Manifest | None:
        cache = self.ex.cache
        cached = cache.get((project, "manifest"))
        if cached is not None:
            return cached  # type: ignore[no-any-return]
        ticket = cache.ticket()
        stored = await self.ex.run(self.ex.storage.read_page, project_json_key(project))
        if stored is None:
            return None
        manifest = parse_project_json(stored.data, where=f"the manifest of {project}")
        cache.put((project, "manifest"), manifest, len(stored.data), ticket)
        return manifest

    async def _view(self, project: str, version: str) -> ReleaseView | None:
        data = await self.ex.run(self.ex.storage.read_bytes, release_view_key(project, version))
        try:
            return ReleaseView.from_json(data) if data is not None else None
        except (ValueError, KeyError, TypeError):
            return None

    async def _may_manage(self, who: Who, project: str) -> bool:
        principal = who.principal
        if principal.kind is not Kind.USER:
            return False
        if principal.admin:
            return True
        roles = await self.manage.roles(project)
        return roles is not None and roles.may_manage(str(principal.user))

    async def _page(self, request: Request, project: str, version: str | None) -> None:
        """A kept page is served as it is for ``page_cache`` seconds, then revalidated: one
        read of the manifest (as ``/simple/<p>/`` costs), and rendered again only if the
        manifest changed (the release views change only with it)."""
        ex = self.ex
        who = await ex.reader(request)
        if who is None:
            return
        base = ex.base(request)
        visible = ex.guard.sees(who.principal, project)
        manage = await self._may_manage(who, project) if visible else False
        nav = ex.nav(who)
        # With no login state in the shell every reader gets the same bytes: keep them whole.
        whole = nav.user is None and visible
        key = (project, ("page" if whole else "main", version, base, manage))
        kept = ex.cache.get(key)
        if kept is None:
            ticket = ex.cache.ticket()
            stale = ex.cache.peek(key)
            stored = await ex.run(ex.storage.read_page, project_json_key(project))
            if stored is None:
                await self._absent(request)
                return
            if stale is not None and stale[1] == stored.etag:
                kept = stale
            else:
                manifest = parse_project_json(stored.data, where=f"the manifest of {project}")
                files = manifest.files
                shown = version or shown_version((e.version, e.yanked is not None) for e in files)
                if shown is None or not any(e.version == shown for e in files):
                    await self._absent(request)
                    return
                view = await self._view(project, shown)
                main = project_main(manifest, view, shown, base=base, latest=version is None, manage=manage)
                title = f"{manifest.name} {version or ''}".strip()
                kept = (shell(title, main, nav) if whole else (title, main)), stored.etag
            size = len(kept[0]) if whole else len(kept[0][1])
            ex.cache.put(key, kept, size, ticket)
        if not visible:
            await self._absent(request)
            return
        ex.send(request, kept[0] if whole else shell(kept[0][0], kept[0][1], nav))


class Static(LeafResource):
    def __init__(self, explorer: Explorer) -> None:
        super().__init__()
        self.ex = explorer

    def render_GET(self, request: Request) -> int:
        names = decode_segments(request.postpath) or []
        found = static_file(names[0]) if len(names) == 1 else None
        if found is None:
            self.ex.message(request, None, 404, "Not found", "There is no such file.")
        else:
            self.ex.send(request, found[0], content_type=found[1].encode("ascii"),
                         cache="public, max-age=3600")
        return NOT_DONE_YET


def _arg(request: Request, name: bytes) -> str:
    values = request.args.get(name)
    return values[0].decode("utf-8", "replace") if values else ""
