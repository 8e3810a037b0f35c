"""Fakes and builders for testing code that uses spoold (as ``treq.testing`` ships)."""
