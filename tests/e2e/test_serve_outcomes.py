"""What an uploader hears when the item was handled by another process on the spool."""

from __future__ import annotations

from testlib.distbuild import write_wheel
from testlib.serveproc import Server, post_file
from testlib.workerprocs import Workers, write_config

from spoold.access.accounts import add_user

AUTH = ("alice", "correct horse")


def test_an_identical_reupload_published_elsewhere_says_already_published(tmp_path):
    """serve claims nothing (threads = 0); a separate worker publishes. The second,
    identical upload must hear "already published with the same bytes", read back from
    done/, not a plain "published"."""
    htpasswd = tmp_path / "htpasswd"
    add_user(htpasswd, *AUTH, rounds=4)
    storage = str(tmp_path / "storage")
    with Server(tmp_path, storage, htpasswd=htpasswd, extra={"threads": 0}) as server, \
         Workers(tmp_path, write_config(tmp_path / "w.toml", server.spool, storage)) as workers:
        workers.start(1)
        wheel = write_wheel(tmp_path, "demo", "1.0")
        status, body = post_file(server.upload, wheel, AUTH, name="demo", version="1.0")
        assert status == 200 and body.decode().endswith(f"{wheel.name} published\n"), body
        status, body = post_file(server.upload, wheel, AUTH, name="demo", version="1.0")
        assert status == 200, body
        assert f"{wheel.name} already published with the same bytes" in body.decode()
        assert workers.stop() == [0]
        assert server.stop() == 0
    assert "] published " not in server.log.read_text(), "serve was not supposed to claim anything"
