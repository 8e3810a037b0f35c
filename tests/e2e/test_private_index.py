"""A private index with real clients against a running ``spoold serve``.

pip, ``pip download --require-hashes``, uv and poetry read with a password and with a read
token (in the URL, in netrc, in uv's ``UV_INDEX_*`` variables); without credentials they
fail with 401. twine, ``uv publish`` and ``poetry publish`` upload with a token limited to
one project and are refused (403, the message shown) for another. Roles: a maintainer
uploads, a stranger cannot.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from spoold.access.accounts import add_user
from testlib.distbuild import write_sdist, write_wheel
from testlib.serveproc import Server

BIN = Path(sys.executable).parent
PASSWORD = "correct horse"


def clean_env(**extra: str) -> dict[str, str]:
    """No pip/uv/poetry settings of the machine, no keyring prompts, no netrc of the user."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PIP_", "UV_", "POETRY_", "TWINE_"))}
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring", UV_NO_CACHE="1",
               UV_KEYRING_PROVIDER="disabled", NETRC=os.devnull)
    env.update(extra)
    return env


def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=180,
                          env=env or clean_env(), cwd=cwd)


def spoold(server: Server, *args: str) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "spoold", *args, "--config", str(server.config))


def with_credentials(url: str, user: str, password: str = "") -> str:
    from urllib.parse import quote

    parts = urlsplit(url)
    userinfo = quote(user, safe="") + (":" + quote(password, safe="") if password else "")
    return f"{parts.scheme}://{userinfo}@{parts.netloc}{parts.path}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("private")
    htpasswd = tmp / "htpasswd"
    for user in ("alice", "bob", "mallory", "root"):
        add_user(htpasswd, user, PASSWORD, rounds=4)
    (tmp / "store").mkdir()
    with Server(tmp, str(tmp / "store"), htpasswd=htpasswd,
                extra={"read": "private", "admins": ["root"]}) as running:
        dists = tmp / "dists"
        dists.mkdir()
        # alice creates demo-app (she owns it), bob creates other-lib.
        for user, name in (("alice", "demo-app"), ("bob", "other-lib")):
            wheel = write_wheel(dists, name, "1.0")
            result = run(str(BIN / "twine"), "upload", "--repository-url", running.upload,
                         "-u", user, "-p", PASSWORD, "--non-interactive", "--disable-progress-bar",
                         str(wheel))
            assert result.returncode == 0, result.stdout + result.stderr
        running.dists = dists  # type: ignore[attr-defined]
        yield running
        running.stop()


def token(server: Server, *args: str) -> str:
    created = spoold(server, "token", "create", *args)
    assert created.returncode == 0, created.stderr
    return created.stdout.strip().splitlines()[-1]


def pip_download(index: str, requirement: str, dest: Path, *extra: str,
                 env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "pip", "download", "--no-deps", "--no-cache-dir",
               "--index-url", index, "--dest", str(dest), *extra, requirement, env=env)


def refusals(server: Server, path: str) -> int:
    """How many reads of ``path`` the server answered 401 (its access log)."""
    return server.log.read_text().count(f'"GET {path}" 401')


def test_without_credentials_every_client_gets_401(server: Server, tmp_path: Path) -> None:
    before = refusals(server, "/simple/demo-app/")
    result = pip_download(server.index, "demo-app", tmp_path)
    assert result.returncode != 0 and not list(tmp_path.glob("*.whl"))
    uv = run(str(BIN / "uv"), "pip", "install", "--target", str(tmp_path / "uv"),
             "--index-url", server.index, "demo-app")
    assert uv.returncode != 0 and "401" in uv.stdout + uv.stderr
    assert refusals(server, "/simple/demo-app/") >= before + 2


def test_pip_with_a_password_and_with_a_read_token(server: Server, tmp_path: Path) -> None:
    wheel = next(server.dists.glob("demo_app-*.whl"))  # type: ignore[attr-defined]
    sha256 = hashlib.sha256(wheel.read_bytes()).hexdigest()
    requirements = tmp_path / "req.txt"
    requirements.write_text(f"demo-app==1.0 --hash=sha256:{sha256}\n")
    by_password = pip_download(with_credentials(server.index, "alice", PASSWORD), str(requirements),
                               tmp_path / "a", "--require-hashes", "-r")
    assert by_password.returncode == 0, by_password.stdout + by_password.stderr
    read = token(server, "--user", "alice", "--scope", "read")
    by_token_user = pip_download(with_credentials(server.index, read), "demo-app", tmp_path / "b")
    assert by_token_user.returncode == 0, by_token_user.stdout + by_token_user.stderr
    netrc = tmp_path / "netrc"
    host = urlsplit(server.index).hostname
    netrc.write_text(f"machine {host} login __token__ password {read}\n")
    netrc.chmod(0o600)
    by_netrc = pip_download(server.index, "demo-app", tmp_path / "c", env=clean_env(NETRC=str(netrc)))
    assert by_netrc.returncode == 0, by_netrc.stdout + by_netrc.stderr
    assert (tmp_path / "c" / wheel.name).read_bytes() == wheel.read_bytes()


def test_uv_with_index_credentials_in_its_variables(server: Server, tmp_path: Path) -> None:
    read = token(server, "--user", "bob", "--scope", "read", "--project", "other-lib")
    env = clean_env(UV_INDEX=f"spoold={server.index}", UV_INDEX_SPOOLD_USERNAME="__token__",
                    UV_INDEX_SPOOLD_PASSWORD=read)
    result = run(str(BIN / "uv"), "pip", "install", "--target", str(tmp_path / "t"),
                 "--index-strategy", "first-index", "--no-deps", "--default-index", server.index,
                 "--index", f"spoold={server.index}", "other-lib", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert any(p.name.startswith("other_lib") for p in (tmp_path / "t").iterdir())
    # The same token cannot see demo-app: absent for it, as if it did not exist.
    hidden = run(str(BIN / "uv"), "pip", "install", "--target", str(tmp_path / "u"), "--no-deps",
                 "--default-index", server.index, "--index", f"spoold={server.index}", "demo-app", env=env)
    assert hidden.returncode != 0 and "demo-app" in hidden.stdout + hidden.stderr


def _poetry_project(path: Path, index: str) -> Path:
    path.mkdir()
    (path / "pyproject.toml").write_text(f"""[project]
name = "consumer"
version = "0.1"
requires-python = ">=3.11"
dependencies = ["demo-app"]

[tool.poetry]
package-mode = false

[[tool.poetry.source]]
name = "spoold"
url = "{index}"
priority = "primary"
""")
    return path


def test_poetry_resolves_from_the_private_index_with_a_token(server: Server, tmp_path: Path) -> None:
    project = _poetry_project(tmp_path / "consumer", server.index)
    read = token(server, "--user", "alice", "--scope", "read")
    env = clean_env(POETRY_HTTP_BASIC_SPOOLD_USERNAME="__token__", POETRY_HTTP_BASIC_SPOOLD_PASSWORD=read,
                    POETRY_CACHE_DIR=str(tmp_path / "cache"), POETRY_VIRTUALENVS_CREATE="false")
    result = run(str(BIN / "poetry"), "lock", "--no-interaction", env=env, cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert 'name = "demo-app"' in (project / "poetry.lock").read_text()
    refused = run(str(BIN / "poetry"), "lock", "--no-interaction", cwd=project,
                  env=clean_env(POETRY_CACHE_DIR=str(tmp_path / "cache2"), POETRY_VIRTUALENVS_CREATE="false"))
    assert refused.returncode != 0


def test_uploads_with_a_token_limited_to_one_project(server: Server, tmp_path: Path) -> None:
    upload = token(server, "--user", "alice", "--scope", "upload", "--project", "demo-app")
    mine = write_wheel(tmp_path, "demo-app", "2.0")
    twine = run(str(BIN / "twine"), "upload", "--repository-url", server.upload, "-u", "__token__",
                "-p", upload, "--non-interactive", "--disable-progress-bar", str(mine))
    assert twine.returncode == 0, twine.stdout + twine.stderr
    uv = run(str(BIN / "uv"), "publish", "--publish-url", server.upload, "--token", upload,
             str(write_sdist(tmp_path, "demo-app", "2.0")))
    assert uv.returncode == 0, uv.stdout + uv.stderr
    again = run(str(BIN / "uv"), "publish", "--publish-url", server.upload, "--token", upload,
                "--check-url", server.index.replace("http://", f"http://__token__:{upload}@"), str(mine))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "already exists" in again.stdout + again.stderr  # uv skipped it after asking the index
    theirs = write_wheel(tmp_path, "other-lib", "2.0")
    refused = run(str(BIN / "twine"), "upload", "--repository-url", server.upload, "-u", "__token__",
                  "-p", upload, "--non-interactive", "--disable-progress-bar", str(theirs))
    assert refused.returncode != 0
    shown = " ".join((refused.stdout + refused.stderr).split())  # twine wraps its lines
    assert "403" in shown and "allows upload and read on demo-app, not other-lib" in shown
    reader = token(server, "--user", "alice", "--scope", "read")
    read_only = run(str(BIN / "twine"), "upload", "--repository-url", server.upload, "-u", "__token__",
                    "-p", reader, "--non-interactive", "--disable-progress-bar",
                    str(write_wheel(tmp_path, "demo-app", "3.0")))
    assert read_only.returncode != 0 and "upload scope" in read_only.stdout + read_only.stderr


def test_poetry_publishes_with_a_token(server: Server, tmp_path: Path) -> None:
    project = tmp_path / "pub"
    project.mkdir()
    (project / "pyproject.toml").write_text("""[project]
name = "demo-app"
version = "4.0"

[build-system]
requires = ["poetry-core>=2"]
build-backend = "poetry.core.masonry.api"
""")
    (project / "demo_app").mkdir()
    (project / "demo_app" / "__init__.py").write_text("")
    upload = token(server, "--user", "alice", "--scope", "upload", "--project", "demo-app")
    env = clean_env(POETRY_REPOSITORIES_SPOOLD_URL=server.upload, POETRY_HTTP_BASIC_SPOOLD_USERNAME="__token__",
                    POETRY_HTTP_BASIC_SPOOLD_PASSWORD=upload, POETRY_CACHE_DIR=str(tmp_path / "cache"))
    built = run(str(BIN / "poetry"), "build", "--no-interaction", env=env, cwd=project)
    assert built.returncode == 0, built.stdout + built.stderr
    published = run(str(BIN / "poetry"), "publish", "-r", "spoold", "--no-interaction", env=env, cwd=project)
    assert published.returncode == 0, published.stdout + published.stderr


def test_roles_a_maintainer_uploads_a_stranger_cannot(server: Server, tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path, "demo-app", "5.0")

    def twine_as(user: str) -> subprocess.CompletedProcess[str]:
        return run(str(BIN / "twine"), "upload", "--repository-url", server.upload, "-u", user,
                   "-p", PASSWORD, "--non-interactive", "--disable-progress-bar", str(wheel))

    refused = twine_as("mallory")
    assert refused.returncode != 0
    assert ("mallory may not upload to project demo-app: ask an owner (alice) for the "
            "maintainer role") in " ".join((refused.stdout + refused.stderr).split())
    assert spoold(server, "role", "set", "demo-app", "mallory", "maintainer").returncode == 0
    allowed = twine_as("mallory")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert spoold(server, "role", "unset", "demo-app", "mallory").returncode == 0
    (tmp_path / "later").mkdir()
    again = run(str(BIN / "twine"), "upload", "--repository-url", server.upload, "-u", "mallory",
                "-p", PASSWORD, "--non-interactive", "--disable-progress-bar",
                str(write_wheel(tmp_path / "later", "demo-app", "6.0")))
    assert again.returncode != 0  # the role was taken away
    roles = json.loads(spoold(server, "role", "list", "demo-app", "--json").stdout)
    assert roles == [{"user": "alice", "role": "owner"}]
    events = json.loads(spoold(server, "events", "demo-app", "--json").stdout)
    uploads = [e for e in events if e["action"] == "upload"]
    assert uploads and all(e["user_agent"] and e["address"] == "127.0.0.1" for e in uploads)
    assert any(e["principal"] == "mallory" and e["filename"] == wheel.name for e in uploads)
    assert any(e["action"] == "upload-rejected" for e in events)
