"""spoold: a private Python package index built on a maildir-style spool.

The pipeline reads top to bottom in the module list: ``spool`` (names, moves),
``inspection`` (hashes, archives, metadata), ``storage`` and ``index`` (publish and
render), with ``worker``, ``web``, ``cli`` and ``systemd`` as adapters around it.
"""

__version__ = "0.1.0.dev0"
