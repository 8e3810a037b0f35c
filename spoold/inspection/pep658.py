"""Which core metadata the index may serve as ``<file>.metadata`` (PEP 658), and why.

A ``data-core-metadata`` attribute is a promise (PEP 658): "the distribution contains a
Core Metadata file that will not be modified when the distribution is processed and/or
installed". pip keeps that promise for it: it resolves from the ``.metadata`` file alone
and never looks at the dependencies again once it has built the package. A wheel's
METADATA is the installed metadata, so it is always served. An sdist's PKG-INFO is only a
promise when PEP 643 makes it one:

* Metadata-Version 2.2 or later (PEP 643). Earlier PKG-INFO files were whatever the
  build tool wrote: setuptools wrote no Requires-Dist into sdists for years, so pip would
  install such a package *without its dependencies* (the same file through
  ``--find-links`` is built first and installs them).
* none of the fields a resolver reads is marked ``Dynamic``
  (:data:`RESOLVER_FIELDS`): a dynamic field may differ in the wheel the sdist builds.
  Other dynamic fields (``Dynamic: license-file``, as setuptools writes) do not change
  what gets installed, so such an sdist keeps its ``.metadata``.

Warehouse (PyPI) is stricter still: it extracts ``.metadata`` from wheels only
(``warehouse/forklift/legacy.py``) and serves none for sdists. spoold serves the sdists
whose PKG-INFO PEP 643 makes binding, which saves uv and pip a build per candidate, and
no others. The rule is one function, used by publishing (through
:attr:`~spoold.inspection.distribution.Distribution.metadata_servable`) and by reindex
(which withdraws ``.metadata`` files an older spoold stored for other sdists).
"""

from __future__ import annotations

import email.parser
import email.policy

__all__ = ["RESOLVER_FIELDS", "metadata_servable"]

#: Fields (lower-case) that pip and uv take from a ``.metadata`` file when resolving. Name
#: and Version may never be Dynamic (the core metadata specification); they are listed so
#: that a file that says otherwise is not trusted either.
RESOLVER_FIELDS = frozenset(
    {"name", "version", "requires-dist", "requires-python", "provides-extra"}
)

#: The first Metadata-Version whose PKG-INFO binds the wheels built from it (PEP 643).
_STATIC_SINCE = (2, 2)


def metadata_servable(kind: str, metadata: bytes) -> bool:
    """Whether *metadata* (a wheel's METADATA or an sdist's PKG-INFO) may be served.

    *kind* is ``"wheel"`` or ``"sdist"``. For an sdist the bytes may come from storage
    (reindex of an old tree), so anything that cannot be read as core metadata is simply
    not served.
    """
    if kind == "wheel":
        return True
    return _static_for_resolvers(metadata)


def _static_for_resolvers(metadata: bytes) -> bool:
    try:
        headers = email.parser.BytesHeaderParser(policy=email.policy.compat32).parsebytes(
            metadata
        )
        versions = headers.get_all("Metadata-Version") or []
        dynamic = headers.get_all("Dynamic") or []
    except Exception:  # email is lenient; whatever it raises means "not core metadata"
        return False
    version = _version_tuple(str(versions[0])) if len(versions) == 1 else None
    if version is None or version[0] != _STATIC_SINCE[0] or version < _STATIC_SINCE:
        return False  # older, or a future major version whose rules nobody knows yet
    return not any(str(field).strip().lower() in RESOLVER_FIELDS for field in dynamic)


def _version_tuple(text: str) -> tuple[int, int] | None:
    major, dot, minor = text.strip().partition(".")
    if not dot or not (major.isdigit() and minor.isdigit()):
        return None
    if not (major.isascii() and minor.isascii()):
        return None
    return int(major), int(minor)
