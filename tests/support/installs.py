"""ssobridge installed as an operator installs it, in a virtualenv of its own: `pip install ssobridge` without extras.

    bin = install_without_extras(folder)   # folder/venv; bin / "ssobridge" is the command
    run_in(bin, "check", "--config", path) # -> CompletedProcess, text captured

The test virtualenv has the kerberos extra (tests need gssapi), so what a user meets without it can only be seen
in another one. Not --system-site-packages: that would see the test virtualenv's gssapi through its base.

The dependencies are installed offline from wheels kept in ~/.cache/ssobridge-tests/wheels-<key> (as the Dockerfile
installs from its wheel folder), in exactly the test virtualenv's versions; the key changes with those versions
and with pyproject.toml. Made on first use with `pip wheel` from the index (10-20 s; pip's HTTP cache does not keep
these downloads here). ssobridge itself is built from a copy of this work tree each time. The virtualenv has no
pip of its own (`venv --without-pip`: ensurepip alone takes 3-8 s); the test virtualenv's pip installs into it
(`pip --python`). Measured on 2 busy cores, wheels cached: 4 s on Python 3.11, 6 s on 3.13.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ssobridge-tests"
KERBEROS_MODULES = ("gssapi", "krb5", "spnego")  # what the kerberos extra brings on Linux
NOT_PINNED = {"ssobridge", "pip", "setuptools", "wheel"}  # as `pip freeze` leaves them out
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def install_without_extras(folder: Path) -> Path:
    """A new virtualenv in folder/venv with ssobridge from this work tree, no extra; its bin folder."""
    source = folder / "source"  # as the Dockerfile copies it: pip would build inside the work tree (build/)
    shutil.copytree(REPOSITORY / "ssobridge", source / "ssobridge", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPOSITORY / name, source)
    constraints = folder / "constraints.txt"
    constraints.write_text("".join(sorted({f"{d.metadata['Name']}=={d.version}\n" for d in metadata.distributions()
                                          if d.metadata["Name"].lower() not in NOT_PINNED})))
    wheels = cached_wheels(source, constraints)
    venv = folder / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    bin_folder = venv / "bin"
    run([*PIP, "--python", str(bin_folder / "python"), "install", "--quiet", "--no-index", "--find-links",
         str(wheels), "-c", str(constraints), str(source)])
    present = [name for name in KERBEROS_MODULES
               if subprocess.run([str(bin_folder / "python"), "-c", f"import {name}"],
                                 capture_output=True).returncode == 0]
    assert present == [], f"the virtualenv without extras has {present}"
    return bin_folder


def cached_wheels(source: Path, constraints: Path) -> Path:
    """The folder of wheels of ssobridge's dependencies (and setuptools, to build it), made once per key."""
    key = hashlib.sha256(constraints.read_bytes() + (source / "pyproject.toml").read_bytes()).hexdigest()[:16]
    wheels = CACHE / f"wheels-{key}"
    if wheels.is_dir():
        return wheels
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix="wheels-partial-", dir=CACHE))  # renamed whole: never half a folder
    try:
        run([*PIP, "wheel", "--quiet", "--wheel-dir", str(partial), "-c", str(constraints), "setuptools>=68",
             str(source)])
        for built in partial.glob("ssobridge-*.whl"):
            built.unlink()  # this work tree's, built again each time
        partial.rename(wheels)
    except OSError:  # another test run made it meanwhile
        pass
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return wheels


def run_in(bin_folder: Path, *arguments: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """`ssobridge ARGUMENTS` of that virtualenv, output captured."""
    return subprocess.run([str(bin_folder / "ssobridge"), *arguments], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout)


def run(command: list[str]) -> subprocess.CompletedProcess:
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}{result.stderr}")
    return result
