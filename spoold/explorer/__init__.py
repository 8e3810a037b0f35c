"""The explorer: what people see of the index in a browser, as plain synchronous code.

* :mod:`~spoold.explorer.readme` -- a description rendered from its content type and
  sanitized (readme_renderer with nh3, as Warehouse does), remote images made links;
* :mod:`~spoold.explorer.release` -- the fields of one release, read from its core
  metadata, as the pages and the JSON API show them;
* :mod:`~spoold.explorer.catalog` -- the small sharded catalog (name, summary, version,
  last upload of every project) that the search index and the home page are built from;
* :mod:`~spoold.explorer.search` -- the in-memory search index;
* :mod:`~spoold.explorer.pages` -- the Jinja2 templates (autoescaped) rendered to bytes;
* :mod:`~spoold.explorer.session` -- signed session cookies, CSRF tokens, the secret;
* :mod:`~spoold.explorer.forms` -- form bodies, same-origin checks, safe redirects, the
  base URL of the index as the request names it.

Nothing here imports :mod:`spoold.index` (which calls into this package at publish
time) or Twisted (:mod:`spoold.web` holds the resources).
"""
