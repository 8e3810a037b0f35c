"""Index rendering: PEP 503/592/629/658/714 HTML and PEP 691/700 JSON from one manifest."""

from __future__ import annotations

import json

from spoold.index.pages import (
    parse_root_json,
    render_project_html,
    render_project_json,
    render_root_html,
    render_root_json,
)
from spoold.index.manifest import Manifest, RootIndex
from testlib.manifests import META, SHA, entry, sample
from testlib.pages import parse_html_page



def test_json_page_fields() -> None:
    doc = json.loads(render_project_json(sample()))
    assert doc["meta"] == {"api-version": "1.1"}
    assert doc["name"] == "sample"
    assert doc["versions"] == ["1.0", "2.0+local"]
    by_name = {f["filename"]: f for f in doc["files"]}
    sdist = by_name["sample-1.0.tar.gz"]
    assert sdist["url"] == "../../packages/sample/sample-1.0.tar.gz"
    assert sdist["hashes"] == {"sha256": SHA}
    assert sdist["requires-python"] == ">=3.8,<4"
    assert sdist["yanked"] is False
    assert sdist["core-metadata"] is False and sdist["dist-info-metadata"] is False
    assert sdist["size"] == 123
    assert sdist["upload-time"] == "2024-01-02T03:04:05.678000Z"
    wheel = by_name["sample-1.0-py3-none-any.whl"]
    assert wheel["yanked"] == "broken"
    assert wheel["core-metadata"] == {"sha256": META} == wheel["dist-info-metadata"]
    assert "requires-python" not in wheel
    local = by_name["sample-2.0+local-py3-none-any.whl"]
    assert local["yanked"] is True
    assert local["url"].endswith("/sample-2.0%2Blocal-py3-none-any.whl")
    assert doc["_spoold"]["generation"] == 7


def test_html_page_matches_json() -> None:
    manifest = sample()
    page = parse_html_page(render_project_html(manifest))
    doc = json.loads(render_project_json(manifest))
    assert page.meta["pypi:repository-version"] == "1.1"
    assert page.title == "Links for Sample"
    assert [link.text for link in page.links] == [f["filename"] for f in doc["files"]]
    for link, item in zip(page.links, doc["files"], strict=True):
        href = link.attrs["href"]
        assert href == f"{item['url']}#sha256={item['hashes']['sha256']}"
        assert link.attrs.get("data-requires-python") == item.get("requires-python")
        yanked = item["yanked"]
        if yanked is False:
            assert "data-yanked" not in link.attrs
        else:
            assert link.attrs["data-yanked"] == ("" if yanked is True else yanked)
        metadata = item["core-metadata"]
        expected = f"sha256={metadata['sha256']}" if metadata else None
        assert link.attrs.get("data-core-metadata") == expected
        assert link.attrs.get("data-dist-info-metadata") == expected


def test_everything_uploaded_is_escaped() -> None:
    evil = '"><script>alert(1)</script>'
    manifest = Manifest.empty("evil", f"Evil{evil}").with_file(
        entry(
            "evil-1.0.tar.gz",
            "1.0",
            requires_python=f">=3{evil}",
            yanked=f"because {evil} & more",
        )
    )
    html = render_project_html(manifest)
    assert b"<script>" not in html
    page = parse_html_page(html)
    assert page.title == f"Links for Evil{evil}"
    (link,) = page.links
    assert link.attrs["data-requires-python"] == f">=3{evil}"
    assert link.attrs["data-yanked"] == f"because {evil} & more"
    root = RootIndex().with_project("evil", f"Evil{evil}")
    root_html = render_root_html(root)
    assert b"<script>" not in root_html
    assert parse_html_page(root_html).links[0].text == f"Evil{evil}"
    assert json.loads(render_project_json(manifest))["files"][0]["yanked"].endswith("& more")


def test_filename_with_odd_characters_is_percent_encoded_in_links() -> None:
    manifest = Manifest.empty("odd").with_file(entry("odd-1.0#x?.tar.gz", "1.0"))
    (link,) = parse_html_page(render_project_html(manifest)).links
    assert link.attrs["href"] == f"../../packages/odd/odd-1.0%23x%3F.tar.gz#sha256={SHA}"


def test_root_pages() -> None:
    root = RootIndex().with_project("b-proj", "B_Proj").with_project("a", "A").with_generation(3)
    doc = json.loads(render_root_json(root))
    assert doc["meta"] == {"api-version": "1.1"}
    assert doc["projects"] == [{"name": "A"}, {"name": "B_Proj"}]
    page = parse_html_page(render_root_html(root))
    assert page.meta["pypi:repository-version"] == "1.1"
    assert [(link.attrs["href"], link.text) for link in page.links] == [
        ("a/", "A"),
        ("b-proj/", "B_Proj"),
    ]
    assert parse_root_json(render_root_json(root)) == root


def test_rendering_is_deterministic() -> None:
    assert render_project_html(sample()) == render_project_html(sample())
    assert render_project_json(sample()) == render_project_json(sample())


def test_empty_project_page_is_valid() -> None:
    manifest = Manifest.empty("gone")
    assert parse_html_page(render_project_html(manifest)).links == []
    assert json.loads(render_project_json(manifest))["files"] == []
