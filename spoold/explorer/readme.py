"""A project's description as HTML that is safe to put in a page: rendered, then sanitized.

The rendering follows Warehouse (``warehouse/utils/readme.py``): the renderer is chosen by
``Description-Content-Type`` (``text/markdown`` -- GFM unless ``variant=CommonMark`` --,
``text/x-rst``, the default when there is none, and ``text/plain``); what cannot be
rendered (reST with errors) falls back to plain text. readme_renderer sanitizes its output
with nh3 (tags and attributes from a short list, ``http``/``https``/``mailto`` URLs only,
``rel="nofollow"`` on links), so no ``<script>``, event handler, ``style``, ``javascript:``
URL or form survives.

spoold goes one step further: an image in a description never loads on its own (the
reader's browser would tell a remote host who reads which private package). Every
``<img>`` becomes a link to its source, labelled with its alt text, that the reader may
click; the pages' Content-Security-Policy (``img-src 'self' data:``) enforces the same.

A description is hostile input and can be huge: above :data:`MARKUP_LIMIT` characters it
is shown as plain text (rendering megabytes of reST takes docutils minutes).
"""

from __future__ import annotations

import html
import re
from email.message import EmailMessage

import readme_renderer.markdown
import readme_renderer.rst
import readme_renderer.txt

__all__ = ["MARKUP_LIMIT", "content_type_of", "render_description"]

#: Descriptions longer than this (characters) are not given to a markup renderer.
MARKUP_LIMIT = 512 * 1024

# The sanitizer's serializer always double-quotes attribute values.
_IMG = re.compile(r'<img\b((?:[^>"]|"[^"]*")*)/?>', re.IGNORECASE)
_ATTR = re.compile(r'([a-zA-Z-]+)="([^"]*)"')


def content_type_of(value: str | None) -> tuple[str, dict[str, str]]:
    """The media type (lowercase; ``text/x-rst`` when absent) and its parameters."""
    if not value or not value.strip():
        return "text/x-rst", {}
    message = EmailMessage()
    try:
        message["content-type"] = value
        media = message.get_content_type()
        params = {k.lower(): str(v) for k, v in message["content-type"].params.items()}
    except (ValueError, TypeError, IndexError, AttributeError):
        return "text/plain", {}
    return media, params


def _plain(text: str) -> str:
    rendered = readme_renderer.txt.render(text)
    return rendered if rendered is not None else html.escape(text)


def _markup(text: str, media: str, params: dict[str, str]) -> str | None:
    if media == "text/markdown":
        variant = "CommonMark" if params.get("variant", "").lower() == "commonmark" else "GFM"
        return readme_renderer.markdown.render(text, variant=variant)
    if media == "text/x-rst":
        return readme_renderer.rst.render(text)
    return None


def _link_for_image(match: re.Match[str]) -> str:
    attrs = dict(_ATTR.findall(match[1]))
    src = attrs.get("src", "")
    label = attrs.get("alt") or "image"
    if not src:
        return f'<span class="image-alt">[{label}]</span>'
    # Both values are escaped already (the sanitizer's output); they are copied as they are.
    return (f'<a class="image-link" href="{src}" rel="nofollow noopener noreferrer">'
            f"[image: {label}]</a>")


def render_description(text: str | None, content_type: str | None) -> str:
    """Sanitized HTML for a description (empty string for none)."""
    if not text or not text.strip():
        return ""
    media, params = content_type_of(content_type)
    rendered: str | None = None
    if len(text) <= MARKUP_LIMIT and media in ("text/markdown", "text/x-rst"):
        try:
            rendered = _markup(text, media, params)
        except Exception:  # a renderer's bug on hostile input: show the text instead
            rendered = None
    if rendered is None:
        return f'<pre class="plain">{_plain(text)}</pre>'
    return _IMG.sub(_link_for_image, rendered)
