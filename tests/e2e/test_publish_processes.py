"""Many processes publishing into one storage at once (local and S3 on moto)."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from spoold.index.pages import parse_root_json, render_root_html
from spoold.storage import open_storage
from spoold.storage.keys import ROOT_HTML, ROOT_JSON, project_json_key
from testlib.backends import storage_url as url_of
from testlib.index_checks import assert_consistent, manifest_of, root_projects
from testlib.pages import parse_html_page
from testlib.publishers import publish_worker


@pytest.fixture(params=["local", "s3"])
def storage_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return url_of(request.param, tmp_path)


@pytest.mark.slow
def test_eight_processes_publish_300_files_into_3_projects(storage_url: str) -> None:
    projects = ["alpha", "beta-project", "gamma"]
    jobs = [(projects[i % 3], f"1.0.{i}") for i in range(300)]
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [
        context.Process(target=publish_worker, args=(storage_url, jobs[w::8], start))
        for w in range(8)
    ]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0] * 8

    storage = open_storage(storage_url)
    for project in projects:
        manifest = assert_consistent(storage, project)
        expected = {f"1.0.{i}" for i in range(300) if projects[i % 3] == project}
        assert {e.version for e in manifest.files} == expected
        assert manifest.listed
        data = json.loads(storage.read_bytes(project_json_key(project)) or b"")
        assert len(data["versions"]) == 100
    assert root_projects(storage) == set(projects)


@pytest.mark.parametrize("batched", [False, True], ids=["each-write-durable", "storage-batches"])
def test_new_projects_from_four_processes_are_all_listed_in_both_formats(
        storage_url: str, batched: bool) -> None:
    """Every process lists its new projects in batches (its root writer) while the others
    do the same: the compare-and-swap across processes loses none, and the HTML root is the
    rendering of the JSON root. ``storage-batches``: each publish in a storage batch, as
    the worker runs it (local storage defers its fsyncs to one shared barrier)."""
    jobs = [(f"new-{i:03d}", "1.0") for i in range(48)]
    context = multiprocessing.get_context("spawn")
    start = context.Event()
    workers = [context.Process(target=publish_worker,
                               args=(storage_url, jobs[w::4], start, 3, batched))
               for w in range(4)]
    for worker in workers:
        worker.start()
    start.set()
    for worker in workers:
        worker.join(120)
    assert [w.exitcode for w in workers] == [0] * 4

    storage = open_storage(storage_url)
    expected = {name for name, _ in jobs}
    assert root_projects(storage) == expected
    data, html = storage.read_bytes(ROOT_JSON), storage.read_bytes(ROOT_HTML)
    root = parse_root_json(data or b"")
    assert render_root_html(root) == html
    assert {a.attrs["href"].rstrip("/") for a in parse_html_page(html or b"").links} == expected
    for name in expected:
        assert manifest_of(storage, name).listed
