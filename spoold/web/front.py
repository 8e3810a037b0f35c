"""The root of the site: ``/`` (uploads and a hint), ``/legacy/``, and 404 for the rest."""

from __future__ import annotations

from twisted.web.resource import Resource
from twisted.web.server import Request

from spoold.web.responses import LeafResource, send_text
from spoold.web.upload import UploadResource

__all__ = ["UPLOAD_PATHS", "Front", "Legacy", "NotFound", "Root"]

UPLOAD_PATHS = frozenset({b"/", b"/legacy", b"/legacy/"})


class Front(LeafResource):
    """``/``: uploads (twine's default repository URL is the server root) and a hint."""

    methods = (b"GET", b"POST")

    def __init__(self, upload: UploadResource) -> None:
        super().__init__()
        self.upload = upload

    def render_GET(self, request: Request) -> bytes:
        if request.postpath not in ([], [b""]):
            return send_text(request, 404, "Not found")
        return send_text(
            request, 200,
            "spoold: a private Python package index.\n\n"
            "Install:  pip install --index-url http://HOST:PORT/simple/ NAME\n"
            "Upload:   twine upload --repository-url http://HOST:PORT/legacy/ dist/*\n"
            "Health:   /health   Metrics: /metrics\n",
        )

    def render_POST(self, request: Request) -> bytes | int:
        if request.postpath not in ([], [b""]):
            return send_text(request, 404, "Not found")
        return self.upload.render_POST(request)


class Legacy(LeafResource):
    """``/legacy/`` (and ``/legacy``: never redirect an upload)."""

    methods = (b"POST",)

    def __init__(self, upload: UploadResource) -> None:
        super().__init__()
        self.upload = upload

    def render_POST(self, request: Request) -> bytes | int:
        if request.postpath not in ([], [b""]):
            return send_text(request, 404, "Not found")
        return self.upload.render_POST(request)


class Root(Resource):
    def getChild(self, path: bytes, request: Request) -> Resource:
        return NotFound()


class NotFound(Resource):
    isLeaf = True

    def render(self, request: Request) -> bytes:
        body = send_text(request, 404, "Not found")
        return b"" if request.method == b"HEAD" else body
