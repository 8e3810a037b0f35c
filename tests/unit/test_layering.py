"""The sans-IO rule, checked: the pure modules import no Twisted at all.

Each check runs in a fresh interpreter (whatever this test process imported already does
not count), all modules in one subprocess so the check stays well under a second.
"""

from __future__ import annotations

import json
import pkgutil
import subprocess
import sys

import spoold.http

PURE = sorted(
    [f"spoold.http.{m.name}" for m in pkgutil.iter_modules(spoold.http.__path__)]
    + ["spoold.http", "spoold.systemd.notify", "spoold.testing", "spoold.testing.dists"]
)

_PROBE = """
import importlib, json, sys
found = {}
for name in sys.argv[1:]:
    importlib.import_module(name)
    found[name] = sorted(m for m in sys.modules if m.split(".")[0] == "twisted")
print(json.dumps(found))
"""


def test_pure_modules_import_no_twisted() -> None:
    assert "spoold.http.multipart" in PURE and "spoold.http.upload_form" in PURE
    out = subprocess.run([sys.executable, "-c", _PROBE, *PURE], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    found = json.loads(out)
    assert {name: mods for name, mods in found.items() if mods} == {}
