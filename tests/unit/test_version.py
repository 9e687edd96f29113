"""`ssobridge --version`: the installed package's metadata, else the source's __version__."""

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import ssobridge

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


def test_version_prints_the_installed_package_metadata():
    done = subprocess.run([sys.executable, "-m", "ssobridge", "--version"], capture_output=True, encoding="utf-8",
                          timeout=60)
    assert done.returncode == 0
    assert done.stdout == f"ssobridge {metadata.version('ssobridge')}\n"


def test_version_falls_back_to_the_source_when_not_installed(monkeypatch):
    def not_installed(name):
        raise metadata.PackageNotFoundError(name)
    monkeypatch.setattr(metadata, "version", not_installed)
    assert ssobridge.version() == ssobridge.__version__


def test_the_source_version_is_the_one_in_pyproject():
    assert ssobridge.__version__ == tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]["version"]
