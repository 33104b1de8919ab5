"""deploy/docker/Dockerfile: python:3.11-slim, the package installed, `exbus` as the
entrypoint, a non-root user; the build context it copies exists and is not ignored."""

from __future__ import annotations

import json
import re
import tomllib

from .conftest import DEPLOY, ROOT

DOCKERFILE = DEPLOY / "docker" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text().replace("\\\n", " ")
    return [(line.split()[0].upper(), line.split(None, 1)[1].strip())
            for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_image_is_slim_python_running_exbus_as_non_root() -> None:
    steps = instructions()
    assert [arg.split()[0] for op, arg in steps if op == "FROM"] == ["python:3.11-slim", "python:3.11-slim"]
    (user,) = [arg for op, arg in steps if op == "USER"]
    assert user.split(":")[0] not in ("root", "0")
    (entrypoint,) = [json.loads(arg) for op, arg in steps if op == "ENTRYPOINT"]
    assert entrypoint == ["exbus"]
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "exbus" in scripts
    assert any(op == "RUN" and "pip install ." in arg for op, arg in steps)


def test_copied_sources_exist_and_pass_the_dockerignore() -> None:
    copied = [arg.split()[:-1] for op, arg in instructions() if op == "COPY" and "--from" not in arg]
    allowed = {line.strip("!/ ") for line in (DEPLOY / "docker" / "Dockerfile.dockerignore").read_text().splitlines()
               if line.startswith("!")}
    for sources in copied:
        for source in sources:
            assert (ROOT / source).exists(), source
            assert source.strip("./") in allowed, source
    exposed = {int(p) for op, arg in instructions() if op == "EXPOSE" for p in re.findall(r"\d+", arg)}
    assert exposed == {9101, 9102, 9103}
