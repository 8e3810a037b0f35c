"""spoold: a private Python package index built on a maildir-style spool.

The subpackages read as the data flows; ``spool``, ``inspection``, ``storage``, ``index``,
``http`` and ``explorer`` are plain synchronous code that never imports Twisted
(``tests/unit/test_layering.py`` checks it):

* :mod:`spoold.spool` -- item names, the queue of renames (deliver, claim, finish, fail,
  defer), housekeeping, the ``incoming/`` drop folder, status;
* :mod:`spoold.inspection` -- distribution filenames, declared digests, safe archive
  readers, wheels, sdists, the core-metadata policy;
* :mod:`spoold.storage` -- the Storage interface, local disk, S3, in memory, every key;
* :mod:`spoold.index` -- manifests, page rendering, compare-and-swap of documents, the
  coalescing root writer, publish, yank/unyank/remove, reindex, the JSON API and explorer
  documents, ``spoold check``;
* :mod:`spoold.http` -- pure HTTP pieces: multipart and the upload form, negotiation,
  ETag/Range rules, routes, admission caps, the health report, the page cache;
* :mod:`spoold.access` -- who may do what: accounts (htpasswd), API tokens, project roles,
  the access policy, sessions' principals, login throttling, the audit trail (pure but
  for the htpasswd reloader's log);
* :mod:`spoold.explorer` -- the web UI's pages (Jinja2), README rendering and sanitizing,
  search, the catalog, forms, CSRF and session cookies.

Around them the adapters: :mod:`spoold.web` (Twisted resources), :mod:`spoold.worker`
(the Twisted worker service, the per-item decision, the watcher), :mod:`spoold.systemd`
(the sd_notify protocol and its service), :mod:`spoold.cli` (commands, exit statuses,
process wiring); and :mod:`spoold.testing`, the fakes users need for their own tests.
Primitives shared by all: :mod:`spoold.durable` (durable writes), :mod:`spoold.hashing`,
:mod:`spoold.safeopen`, :mod:`spoold.threads` (the ``Run`` type), :mod:`spoold.config`,
:mod:`spoold.errors`, :mod:`spoold.metrics`.
"""

__version__ = "0.2.0.dev0"
