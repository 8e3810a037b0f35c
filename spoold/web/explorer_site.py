"""The explorer mounted on the site: its guard, cache, resources, in one call each.

:func:`spoold.web.site.build_site` calls :func:`explorer_guard` for the read guard (a
:class:`~spoold.web.session.SessionGuard`: Basic credentials and tokens as before, and
the browser session) and :func:`mount_explorer` for ``/`` (GET), ``/search/``,
``/project/``, ``/login``, ``/logout``, ``/account/``, ``/pypi/`` and ``/static/``. The
index page cache it returns is the site's (a :class:`~spoold.explorer.cache.LinkedPageCache`),
so what invalidates index pages (the worker's publishes) invalidates the explorer's too.
"""

from __future__ import annotations

from typing import Any

from twisted.web.resource import Resource

from spoold.config import Settings
from spoold.explorer.cache import ExplorerCache, LinkedPageCache
from spoold.threads import Run
from spoold.web.account import Account, Manage
from spoold.web.explorer import Home, Projects, Search, SearchService, Static
from spoold.web.explorer_kit import Explorer
from spoold.web.jsonapi import JsonApi
from spoold.web.session import FormRequest, Login, Logout, SessionGuard, SessionKeeper

__all__ = ["FormRequest", "explorer_guard", "mount_explorer"]


def explorer_guard(storage: Any, run: Run, auth: Any, authenticator: Any, auth_run: Run,
                   settings: Settings, reactor: Any) -> SessionGuard:
    keeper = SessionKeeper(storage, run, lifetime=settings.session_lifetime, clock=reactor.seconds,
                           admins=frozenset(settings.admins),
                           users=lambda: auth.users if auth is not None else frozenset())
    return SessionGuard(authenticator, auth_run, public=settings.public_reads, keeper=keeper)


def mount_explorer(root: Resource, *, storage: Any, run: Run, guard: SessionGuard, upload: Any,
                   settings: Settings, page_cache: float, reactor: Any) -> tuple[Explorer, LinkedPageCache | None]:
    """Put the explorer's resources on ``root``; returns it and the index page cache."""
    explorer_cache = ExplorerCache(page_cache, reactor.seconds)
    cache = LinkedPageCache(page_cache, reactor.seconds, explorer_cache) if page_cache > 0 else None
    explorer = Explorer(storage=storage, run=run, guard=guard, settings=settings,
                        cache=explorer_cache, reactor=reactor)
    explorer.page_cache = cache
    search = SearchService(storage, run, ttl=page_cache, clock=reactor.seconds)
    explorer_cache.listeners.append(search.stale)
    root.putChild(b"", Home(upload, explorer, search))
    root.putChild(b"search", Search(explorer, search))
    root.putChild(b"project", Projects(explorer, Manage(explorer)))
    root.putChild(b"login", Login(explorer))
    root.putChild(b"logout", Logout(explorer))
    root.putChild(b"account", Account(explorer))
    root.putChild(b"pypi", JsonApi(explorer))
    root.putChild(b"static", Static(explorer))
    return explorer, cache
