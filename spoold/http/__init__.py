"""Pure HTTP pieces with no Twisted (the web adapter, :mod:`spoold.web`, runs them).

* :mod:`~spoold.http.multipart` -- the upload form parser, over :mod:`~spoold.http.reader`
  (bounded-memory reading) and :mod:`~spoold.http.headers` (parameters, request line,
  reason phrase), raising :mod:`~spoold.http.errors`;
* :mod:`~spoold.http.upload_form` -- which upload forms spoold takes, and delivering one;
* :mod:`~spoold.http.negotiation` -- PEP 691 content negotiation;
* :mod:`~spoold.http.conditional` -- ETags, ``If-None-Match``, ``Range``/``If-Range``;
* :mod:`~spoold.http.paths` -- what a URL path may name;
* :mod:`~spoold.http.pagecache` -- the in-memory index page cache;
* :mod:`~spoold.http.health` -- the ``/health`` report.

``tests/unit/test_layering.py`` keeps it that way: none of these imports Twisted.
"""
