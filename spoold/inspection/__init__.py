"""Inspection: proving that a file is the distribution its name says it is.

Filename, digests, archive safety, wheel and sdist structure, core metadata. Pure code.
"""

from spoold.inspection.distribution import Distribution
from spoold.inspection.inspect import inspect_file

__all__ = ["Distribution", "inspect_file"]
