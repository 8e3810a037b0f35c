"""The value that crosses from inspection to storage: a validated distribution."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from spoold.inspection.pep658 import metadata_servable

Kind = Literal["wheel", "sdist"]


@dataclass(frozen=True, slots=True)
class Distribution:
    """Everything the index needs to know about one file, proven from its bytes.

    Produced only by :func:`spoold.inspection.inspect.inspect_file`, so holding one means the
    file's name, digests, archive and core metadata have all been checked.
    """

    filename: str
    #: PEP 503 normalized project name (the ``<project>`` in every URL and path).
    project: str
    #: The name as the metadata spells it (for display).
    name: str
    #: The version as a normalized string (``str(packaging.version.Version(...))``).
    version: str
    kind: Kind
    size: int
    sha256: str
    blake2_256: str
    #: The exact bytes of METADATA / PKG-INFO; served as ``<filename>.metadata`` (PEP 658)
    #: only when :attr:`metadata_servable`.
    metadata: bytes
    metadata_sha256: str
    requires_python: str | None = None
    summary: str | None = None

    @property
    def metadata_servable(self) -> bool:
        """Whether the index may serve :attr:`metadata` as ``<filename>.metadata``.

        Always for a wheel; for an sdist only when PEP 643 makes its PKG-INFO binding for
        what resolvers read (:mod:`spoold.inspection.pep658`): otherwise pip would trust
        it and install the package without dependencies the build declares. Derived
        from :attr:`kind` and :attr:`metadata` rather than stored, so no Distribution,
        however it was made, can claim otherwise.
        """
        return metadata_servable(self.kind, self.metadata)
