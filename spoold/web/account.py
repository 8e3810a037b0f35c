"""What a logged-in user manages: ``/account/`` (tokens) and ``/project/<p>/manage/``.

Every POST needs a browser session, its CSRF token in the form and, when the browser
sends one, an ``Origin`` (or ``Referer``) of this site; a forged cross-site form is
answered 403 and changes nothing. Every change is an event in the audit trail
(:meth:`~spoold.web.explorer_kit.Explorer.record`) with the user, address and user agent.

* Account: the user's tokens (:class:`~spoold.access.store.AccessStore`), a new token
  shown once in the answer to its POST (never stored, never in a URL), revocation of
  the user's own tokens (admins: anyone's).
* Manage (owners and admins: :func:`~spoold.access.policy.may_manage`): yank and unyank a
  release or a file with a reason (:mod:`spoold.index.changes`, which also renders the
  pages and JSON documents again), make users maintainers or owners and take roles away
  (:meth:`~spoold.access.store.AccessStore.change_roles`); the last owner stays.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from twisted.web.server import NOT_DONE_YET, Request

from spoold.access.policy import may_manage
from spoold.access.principal import Kind
from spoold.access.roles import Role, Roles
from spoold.access.tokens import BadToken, new_token, parse_expiry
from spoold.errors import SpooldError
from spoold.explorer.pages import page
from spoold.explorer.release import version_states
from spoold.index.changes import unyank, yank
from spoold.index.documents import NotFound
from spoold.index.pages import parse_project_json
from spoold.storage.keys import project_json_key
from spoold.web.explorer_kit import Explorer, Who
from spoold.web.responses import LeafResource

__all__ = ["Account", "Manage"]


async def _session_user(ex: Explorer, request: Request, *, post: bool) -> Who | None:
    """A logged-in user (or None, answered); for a POST also a valid CSRF token and origin."""
    who = await ex.who(request)
    if who is None:
        return None
    if not who.principal.authenticated:
        ex.must_log_in(request)
        return None
    if who.principal.kind is not Kind.USER:
        ex.message(request, who, 403, "Log in as a user",
                   f"{who.principal.describe()} cannot manage accounts or projects; log in with "
                   "your user name and password.", link=("/login", "Log in"))
        return None
    if post:
        form = ex.form(request)
        if not (who.session is not None and ex.same_site(request)
                and ex.guard.keeper.check_csrf(who.session, form.get("csrf"))):
            ex.message(request, who, 403, "Refused",
                       "This form was not sent from this site's own pages (or your session "
                       "ended); nothing was changed.")
            return None
    return who


class Account(LeafResource):
    methods = (b"GET", b"POST")

    def __init__(self, explorer: Explorer) -> None:
        super().__init__()
        self.ex = explorer

    def render_GET(self, request: Request) -> int:
        return self.ex.serve(request, lambda: self._show(request))

    def render_POST(self, request: Request) -> int:
        return self.ex.serve(request, lambda: self._post(request))

    async def _show(self, request: Request, *, new_token_text: str | None = None, message: str | None = None,
                    who: Who | None = None, status: int = 200) -> None:
        ex = self.ex
        if request.postpath not in ([], [b""]) and new_token_text is None and message is None:
            ex.message(request, None, 404, "Not found", "There is no such page.")
            return
        who = who or await _session_user(ex, request, post=False)
        if who is None:
            return
        user = str(who.principal.user)
        revoked = request.args.get(b"revoked")
        if message is None and revoked:
            message = f"Token {revoked[0].decode('ascii', 'replace')[:16]} was revoked."
        tokens = await ex.run(self._listing, user)
        ex.send(request, page("account", "Account", ex.nav(who), user=user, tokens=tokens,
                              new_token=new_token_text, message=message,
                              csrf=ex.guard.keeper.csrf(who.session) if who.session else "",
                              base=ex.base(request)), status=status, cache="no-store")

    def _listing(self, user: str) -> list[dict[str, Any]]:
        access = self.ex.access
        return [t.listing(access.last_used(t.id)) for t in access.tokens(user)]

    async def _post(self, request: Request) -> None:
        ex = self.ex
        action = request.postpath
        if action not in ([b"tokens"], [b"tokens", b"revoke"]):
            ex.message(request, None, 404, "Not found", "There is no such form.")
            return
        who = await _session_user(ex, request, post=True)
        if who is None:
            return
        form = ex.form(request)
        if action == [b"tokens"]:
            await self._create(request, who, form)
        else:
            await self._revoke(request, who, form)

    async def _create(self, request: Request, who: Who, form: dict[str, str]) -> None:
        ex = self.ex
        user = str(who.principal.user)
        projects = [p.strip() for p in form.get("projects", "").replace(" ", ",").split(",") if p.strip()]
        try:
            expires = parse_expiry(form.get("expires", "").strip() or None, _now())
            token, secret = new_token(user, [form.get("scope", "read")], projects, expires=expires,
                                      description=form.get("description", "").strip(), now=_now())
        except BadToken as exc:
            await self._show(request, who=who, message=f"No token was created: {exc.message}", status=400)
            return
        await ex.run(ex.access.add_token, token)
        await ex.record(request, who, "token-create",
                        detail=f"token {token.id} for {token.user}: {token.allows().split(' allows ', 1)[1]}")
        await self._show(request, who=who, new_token_text=secret, status=201,
                         message=f"Created {token.allows()}.")

    async def _revoke(self, request: Request, who: Who, form: dict[str, str]) -> None:
        ex = self.ex
        token_id = form.get("token", "")
        token = await ex.run(ex.access.token, token_id) if len(token_id) == 16 else None
        if token is None or (token.user != who.principal.user and not who.principal.admin):
            await self._show(request, who=who, message="No such token of yours.", status=404)
            return
        await ex.run(ex.access.revoke_token, token.id)
        if ex.guard.authenticator is not None:
            ex.guard.authenticator.forget()
        await ex.record(request, who, "token-revoke", detail=f"token {token.id} of {token.user}")
        ex.redirect(request, f"/account/?revoked={token.id}")


class Manage:
    """``/project/<p>/manage/`` and its forms; routed to by :class:`~spoold.web.explorer.Projects`."""

    def __init__(self, explorer: Explorer) -> None:
        self.ex = explorer

    async def roles(self, project: str) -> Roles | None:
        cached = self.ex.cache.get((project, "roles"))
        if cached is not None:
            return cached or None  # type: ignore[no-any-return]
        ticket = self.ex.cache.ticket()
        roles = await self.ex.run(self.ex.access.roles, project)
        self.ex.cache.put((project, "roles"), roles or Roles(), 1, ticket)
        return roles

    def render_for(self, request: Request, project: str, rest: list[str]) -> int:
        ex = self.ex
        if request.method in (b"GET", b"HEAD") and rest == [""]:
            return ex.serve(request, lambda: self._show(request, project))
        if request.method == b"POST" and len(rest) == 1 and rest[0] in ("yank", "unyank", "roles"):
            return ex.serve(request, lambda: self._post(request, project, rest[0]))
        if rest == []:
            ex.redirect(request, f"/project/{project}/manage/", status=301)
            return NOT_DONE_YET
        ex.message(request, None, 404, "Not found", "There is no such page.")
        return NOT_DONE_YET

    async def _allowed(self, request: Request, project: str, *, post: bool) -> tuple[Who, Any] | None:
        ex = self.ex
        who = await _session_user(ex, request, post=post)
        if who is None:
            return None
        manifest = await ex.run(_read_manifest, ex.storage, project)
        if manifest is None or not manifest.files or not ex.guard.sees(who.principal, project):
            ex.message(request, who, 404, "Not found", "There is no such project here.")
            return None
        decision = may_manage(who.principal, project, await ex.run(ex.access.roles, project))
        if not decision:
            ex.message(request, who, 403, "Not yours to manage", decision.message)
            return None
        return who, manifest

    async def _show(self, request: Request, project: str, *, message: str | None = None,
                    error: str | None = None) -> None:
        ex = self.ex
        allowed = await self._allowed(request, project, post=False)
        if allowed is None:
            return
        who, manifest = allowed
        roles = await ex.run(ex.access.roles, project) or Roles()
        releases = []
        states = version_states((e.version, e.yanked is not None) for e in manifest.files)
        for version, yanked in states.items():
            files = [e for e in manifest.files if e.version == version]
            releases.append({"version": version, "yanked": yanked, "files": files,
                             "reason": next((e.yanked for e in files if e.yanked), "")})
        message = message or _arg(request, b"done") or None
        ex.send(request, page("manage", f"Manage {manifest.name}", ex.nav(who), project=project,
                              name=manifest.name, releases=releases, message=message, error=error,
                              roles=[(u, r["role"]) for r in roles.listing() for u in [r["user"]]],
                              csrf=ex.guard.keeper.csrf(who.session) if who.session else ""),
                cache="no-store")

    async def _post(self, request: Request, project: str, action: str) -> None:
        ex = self.ex
        allowed = await self._allowed(request, project, post=True)
        if allowed is None:
            return
        who, _ = allowed
        form = ex.form(request)
        try:
            if action == "roles":
                done = await self._roles(request, who, project, form)
            else:
                done = await self._yank(request, who, project, action, form)
        except (NotFound, SpooldError) as exc:
            await self._show(request, project, error=exc.message)
            return
        ex.redirect(request, f"/project/{project}/manage/?done={quote(done)}")

    async def _yank(self, request: Request, who: Who, project: str, action: str,
                    form: dict[str, str]) -> str:
        ex = self.ex
        target = form.get("target", "").strip()
        reason = " ".join(form.get("reason", "").split())[:500]
        if action == "yank":
            result = await ex.run(yank, ex.storage, project, target, reason)
        else:
            result = await ex.run(unyank, ex.storage, project, target)
        self._invalidate(project)
        for filename in result.filenames:
            await ex.record(request, who, action, project=project, filename=filename,
                            detail=reason if action == "yank" else None)
        verb = "Yanked" if action == "yank" else "Unyanked"
        return f"{verb} {target}" if result.changed else f"{target} was already {action}ed"

    async def _roles(self, request: Request, who: Who, project: str, form: dict[str, str]) -> str:
        ex = self.ex
        user, role = form.get("user", "").strip(), form.get("role", "")
        authenticator = ex.guard.authenticator
        if role not in ("owner", "maintainer", "none") or not user:
            raise SpooldError("choose a user and a role")
        if role != "none" and (authenticator is None or user not in authenticator.passwords.users):
            raise SpooldError(f"there is no user {user!r} on this server")

        def change(current: Roles | None) -> Roles | None:
            current = current or Roles()
            if role == "none":
                if current.owners == {user}:
                    raise SpooldError(f"{user} is the last owner of {project}; make someone else owner first")
                return current.without(user)
            return current.with_role(user, Role(role))

        _, changed = await ex.run(ex.access.change_roles, project, change)
        self._invalidate(project)
        if changed:
            await ex.record(request, who, "role-unset" if role == "none" else "role-set", project=project,
                            detail=user if role == "none" else f"{user} {role}")
        return f"{user}: {role if role != 'none' else 'no role'}"

    def _invalidate(self, project: str) -> None:
        page_cache = getattr(self.ex, "page_cache", None)
        (page_cache or self.ex.cache).invalidate(project)


def _read_manifest(storage: Any, project: str) -> Any:
    stored = storage.read_page(project_json_key(project))
    return parse_project_json(stored.data) if stored is not None else None


def _arg(request: Request, name: bytes) -> str:
    values = request.args.get(name)
    return values[0].decode("utf-8", "replace")[:300] if values else ""


def _now() -> datetime:
    return datetime.now(UTC)
