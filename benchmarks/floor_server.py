#!/usr/bin/env python3
"""The framework's floor: a bare Twisted resource serving spoold's stored pages from a dict.

What ``bench_reads.py`` holds spoold against. It does the least a Twisted web server can
do for ``GET /simple/<project>/`` and still answer like an index: every
``simple/*/index.html`` and ``index.v1.json`` of the storage tree is read into a dict at
start; a request is a dict lookup, a one-line Accept check, three headers and the bytes.
No access log, no metrics, no content negotiation rules, no ETag, no thread pool, no
authentication: anything spoold adds on top of this is spoold's cost.

Run:  python benchmarks/floor_server.py STORAGE-DIR PORT
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from twisted.internet import reactor
from twisted.web.resource import Resource
from twisted.web.server import Site

JSON = b"application/vnd.pypi.simple.v1+json"


def load(storage: Path) -> dict[bytes, tuple[bytes, bytes]]:
    """``project`` -> (HTML page, JSON page), read from the tree once."""
    pages: dict[bytes, tuple[bytes, bytes]] = {}
    simple = storage / "simple"
    for entry in os.scandir(simple):
        if entry.is_dir() and not entry.name.startswith("."):
            folder = Path(entry.path)
            pages[entry.name.encode()] = ((folder / "index.html").read_bytes(),
                                          (folder / "index.v1.json").read_bytes())
    pages[b""] = ((simple / "index.html").read_bytes(), (simple / "index.v1.json").read_bytes())
    return pages


class Floor(Resource):
    isLeaf = True

    def __init__(self, pages: dict[bytes, tuple[bytes, bytes]]) -> None:
        super().__init__()
        self.pages = pages

    def render_GET(self, request):  # type: ignore[no-untyped-def]
        path = request.postpath
        name = path[0] if len(path) >= 1 else b""
        page = self.pages.get(name)
        if page is None:
            request.setResponseCode(404)
            return b"not found\n"
        accept = request.getHeader(b"accept") or b""
        json = JSON in accept
        request.setHeader(b"content-type", JSON if json else b"text/html; charset=utf-8")
        request.setHeader(b"vary", b"Accept")
        return page[1] if json else page[0]


def main() -> None:
    storage, port = Path(sys.argv[1]), int(sys.argv[2])
    root = Resource()
    root.putChild(b"simple", Floor(load(storage)))
    site = Site(root)
    site.noisy = False
    site.log = lambda request: None  # type: ignore[method-assign]  # no access log at all
    reactor.listenTCP(port, site, interface="127.0.0.1")  # type: ignore[attr-defined]
    print(f"floor server on 127.0.0.1:{port}", flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
