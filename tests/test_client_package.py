"""sergas_client is a package of its own: built from its directory, installed in a fresh
virtualenv with httpx as its only dependency, imported without Django anywhere."""

import ast
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[1] / "sergas_client"

PROBE = """
import importlib.metadata, importlib.util, sergas_client
assert importlib.util.find_spec("django") is None, "django is importable"
assert importlib.util.find_spec("sergas") is None, "the server is importable"
print(sergas_client.__file__)
print(importlib.metadata.requires("sergas-client"))
print(sorted(sergas_client.__all__))
"""


@pytest.mark.slow
def test_the_client_builds_and_installs_alone_and_imports_without_django(tmp_path):
    # Built from a copy: an in-tree build would leave build/ and egg-info in the checkout.
    source = shutil.copytree(
        CLIENT, tmp_path / "source", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", wheels, source],
        check=True,
    )
    (wheel,) = wheels.glob("sergas_client-*.whl")
    environment = tmp_path / "venv"
    venv.create(environment, with_pip=True)
    python = environment / "bin" / "python"
    subprocess.run([python, "-m", "pip", "install", "--quiet", wheel], check=True)
    lines = subprocess.run(
        [python, "-I", "-c", PROBE], check=True, capture_output=True, text=True, cwd=tmp_path
    ).stdout.splitlines()
    assert str(environment) in lines[0]
    (requirement,) = ast.literal_eval(lines[1])
    assert requirement.startswith("httpx")
    for name in ("SergasClient", "Worker", "Schedule", "Execution", "Lease"):
        assert name in lines[2]
