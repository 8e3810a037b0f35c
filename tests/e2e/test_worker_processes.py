"""End to end with real ``spoold worker`` processes: many workers, crashes, outages,
bad input. Each test polls for its end condition with a bound; none sleeps for timing."""

from __future__ import annotations

import os
import random
from collections import Counter
from pathlib import Path

import boto3
import pytest
from moto.server import ThreadedMotoServer

from testlib.distbuild import write_wheel, write_zip, wheel_members  # noqa: E402
from testlib.workerprocs import Workers, count, drop, manifest_files, wait_until, write_config  # noqa: E402

from spoold.spool.names import ItemName  # noqa: E402
from spoold.spool.queue import Spool  # noqa: E402

PROJECTS = ["alpha", "beta-pkg", "gamma"]


def make_wheels(out: Path, n: int, start: int = 0) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [write_wheel(out, PROJECTS[i % 3], f"1.{i}") for i in range(start, start + n)]


def local_reader(storage: Path):
    def read(key: str) -> bytes | None:
        path = storage / key
        return path.read_bytes() if path.exists() else None
    return read


def s3_reader(bucket: str, endpoint: str):
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")

    def read(key: str) -> bytes | None:
        try:
            return client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except client.exceptions.NoSuchKey:
            return None
    return read


def published_files(read) -> Counter:
    return Counter(f for p in PROJECTS for f in manifest_files(read, p.replace("_", "-")))


def uids(folder: Path) -> Counter:
    return Counter(ItemName.parse(e).uid for e in os.listdir(folder) if not e.endswith(".json"))


def assert_spool_empty_of_work(spool: Path) -> None:
    for folder in ("new", "cur", "deferred", "tmp", "incoming"):
        assert count(spool / folder) == 0, f"{folder}/ is not empty: {os.listdir(spool / folder)[:5]}"


@pytest.fixture(scope="module")
def s3env():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # Both variables: AWS_ENDPOINT_URL_S3 wins over AWS_ENDPOINT_URL, and other test
    # modules point it at their own moto server.
    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint,
           "AWS_ENDPOINT_URL_S3": endpoint}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield {"endpoint": endpoint, "env": env, "server": server, "port": port}
    server.stop()
    for k, v in old.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def new_bucket(endpoint: str) -> str:
    name = f"spoold-{random.randrange(1 << 32):08x}"
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=name)
    return name


def test_four_workers_publish_backlog_and_live_drops_exactly_once(tmp_path):
    spool, storage = tmp_path / "spool", tmp_path / "storage"
    Spool.create(spool)
    backlog = make_wheels(tmp_path / "backlog", 100)
    live = make_wheels(tmp_path / "live", 500, start=100)
    drop(spool, backlog)
    config = write_config(tmp_path / "spoold.toml", spool, str(storage))
    with Workers(tmp_path, config) as workers:
        workers.start(4)
        drop(spool, live)
        wait_until(lambda: count(spool / "done") == 600, 240, "600 items in done/")
        assert workers.stop() == [0, 0, 0, 0]
    expected = {p.name for p in backlog + live}
    files = published_files(local_reader(storage))
    assert set(files) == expected and max(files.values()) == 1
    assert workers.published() == Counter(expected), "some file was published twice or never"
    assert_spool_empty_of_work(spool)
    assert count(spool / "failed") == 0
    assert len({log for log in workers.logs if "] published " in log.read_text()}) >= 2


def test_workers_on_s3_and_two_spools_sharing_a_bucket(tmp_path, s3env):
    """Two "hosts", each with its own spool and two workers, publish into one bucket: a
    backlog waiting before they start, then files dropped while they run, some of them
    (identical bytes) on both hosts. (240 files: moto is slow, and the suite must stay short.)"""
    bucket = new_bucket(s3env["endpoint"])
    spools = [tmp_path / "host-a", tmp_path / "host-b"]
    wheels = make_wheels(tmp_path / "dists", 240)
    for spool in spools:
        Spool.create(spool)
    backlog = {spools[0]: wheels[:60], spools[1]: wheels[120:160]}
    shared = wheels[:40]
    live = {spools[0]: wheels[60:120], spools[1]: shared + wheels[160:]}
    for spool, batch in backlog.items():
        drop(spool, batch)
    with Workers(tmp_path, write_config(tmp_path / "a.toml", spools[0], f"s3://{bucket}/pypi"),
                 s3env["env"]) as a, \
         Workers(tmp_path, write_config(tmp_path / "b.toml", spools[1], f"s3://{bucket}/pypi"),
                 s3env["env"]) as b:
        a.start(2)
        b.start(2)
        for spool, batch in live.items():
            drop(spool, batch)
        wait_until(lambda: count(spools[0] / "done") + count(spools[1] / "done") == 280, 240,
                   "all items published from both spools")
        assert a.stop() + b.stop() == [0, 0, 0, 0]
    read = s3_reader(bucket, s3env["endpoint"])
    files = published_files(lambda key: read(f"pypi/{key}"))
    assert set(files) == {w.name for w in wheels} and max(files.values()) == 1
    published = a.published() + b.published()
    wrong = {w.name: published[w.name] for w in wheels[40:] if published[w.name] != 1}
    assert not wrong, f"not published exactly once: {wrong}"
    assert all(1 <= published[w.name] <= 2 for w in shared)  # the other host may find it done
    assert read("pypi/simple/index.html") is not None
    for spool in spools:
        assert_spool_empty_of_work(spool)
        assert count(spool / "failed") == 0


def test_sigkilled_workers_lose_nothing(tmp_path):
    spool, storage = tmp_path / "spool", tmp_path / "storage"
    Spool.create(spool)
    wheels = make_wheels(tmp_path / "dists", 500)
    config = write_config(tmp_path / "spoold.toml", spool, str(storage))
    rng = random.Random(5)
    # The backlog is in place before the workers start, so the kills land while they work
    # (dropping 500 files can take longer than processing them).
    drop(spool, wheels)
    with Workers(tmp_path, config) as workers:
        workers.start(3)
        kills = 0
        while count(spool / "done") < 400 and kills < 12:
            done_before = count(spool / "done")
            wait_until(lambda: count(spool / "done") >= done_before + rng.randrange(5, 30)
                       or count(spool / "done") >= 500, 60, "progress between kills")
            workers.kill(rng.choice(workers.procs))
            kills += 1
            workers.start(1)
        wait_until(lambda: count(spool / "done") == 500, 240, "every item in done/")
        assert workers.stop() == [0, 0, 0]
    assert kills >= 3
    files = published_files(local_reader(storage))
    assert set(files) == {w.name for w in wheels} and max(files.values()) == 1
    done = uids(spool / "done")
    assert len(done) == 500 and max(done.values()) == 1
    assert_spool_empty_of_work(spool)
    assert count(spool / "failed") == 0


def test_storage_outage_defers_and_recovers(tmp_path, s3env):
    bucket = new_bucket(s3env["endpoint"])
    spool = tmp_path / "spool"
    Spool.create(spool)
    wheels = make_wheels(tmp_path / "dists", 60)
    config = write_config(tmp_path / "spoold.toml", spool, f"s3://{bucket}",
                          retry_base=0.5, retry_max=2.0)
    server: ThreadedMotoServer = s3env["server"]
    with Workers(tmp_path, config, s3env["env"]) as workers:
        workers.start(2)
        drop(spool, wheels[:20])
        wait_until(lambda: count(spool / "done") == 20, 120, "first items published")
        server.stop()
        # moto's stop() leaves the socket listening (connections would hang until the
        # read timeout); close it so the outage is a refused connection, as when a
        # storage server is down.
        server._server.server_close()
        try:
            drop(spool, wheels[20:])
            wait_until(lambda: count(spool / "deferred") > 0, 120, "items deferred during the outage")
            assert count(spool / "failed") == 0
        finally:
            restarted = ThreadedMotoServer(ip_address="127.0.0.1", port=s3env["port"])
            restarted.start()
            s3env["server"] = restarted
        wait_until(lambda: count(spool / "done") == 60, 180, "every item published after the outage")
        assert workers.stop() == [0, 0]
    assert count(spool / "failed") == 0
    lines = workers.log_lines()
    assert any("deferred" in line and "storage" in line.lower() for line in lines)
    read = s3_reader(bucket, s3env["endpoint"])
    assert set(published_files(read)) == {w.name for w in wheels}


def bad_inputs(out: Path) -> dict[str, str]:
    """Broken files and the reason code each must be failed with."""
    out.mkdir()
    (out / "empty-1.0-py3-none-any.whl").write_bytes(b"")
    (out / "notzip-1.0-py3-none-any.whl").write_bytes(b"hello, I am text")
    good = write_wheel(out, "trunc", "1.0")
    good.write_bytes(good.read_bytes()[:-30])
    members = wheel_members("mismatch", "1.0", metadata="Metadata-Version: 2.1\nName: other\nVersion: 1.0\n")
    write_zip(out / "mismatch-1.0-py3-none-any.whl", members)
    members = wheel_members("evil", "1.0", files={"../../etc/evil": b"x"})
    write_zip(out / "evil-1.0-py3-none-any.whl", members)
    return {
        "empty-1.0-py3-none-any.whl": "invalid-archive",
        "notzip-1.0-py3-none-any.whl": "invalid-archive",
        "trunc-1.0-py3-none-any.whl": "invalid-archive",
        "mismatch-1.0-py3-none-any.whl": "metadata-mismatch",
        "evil-1.0-py3-none-any.whl": "unsafe-archive",
        "notes.txt": "invalid-filename",
    }


def test_bad_input_is_failed_with_reasons_and_the_rest_published(tmp_path):
    spool, storage = tmp_path / "spool", tmp_path / "storage"
    Spool.create(spool)
    expected_failures = bad_inputs(tmp_path / "bad")
    good = make_wheels(tmp_path / "good", 30)
    files = good[:15] + sorted((tmp_path / "bad").iterdir()) + good[15:]
    with Workers(tmp_path, write_config(tmp_path / "c.toml", spool, str(storage))) as workers:
        workers.start(2)
        drop(spool, files)
        # `spoold drop` refuses non-distributions up front; rsync into new/ cannot.
        (tmp_path / "notes.txt").write_text("not a distribution")
        os.rename(tmp_path / "notes.txt", spool / "new" / "notes.txt")
        wait_until(lambda: count(spool / "done") == 30 and count(spool / "failed") >= 12, 120,
                   "good files published and bad ones failed")
        assert workers.stop() == [0, 0]
    status = Spool(spool).status()
    got = {f.filename: f.code for f in status.failures}
    assert got == expected_failures
    assert all(f.error for f in status.failures)
    assert set(published_files(local_reader(storage))) == {w.name for w in good}
    rejected = [line for line in workers.log_lines() if "] rejected " in line]
    assert len(rejected) == len(expected_failures)
