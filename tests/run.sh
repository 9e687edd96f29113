#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): installs what the tests need, then runs pytest.
#   - Debian packages (Samba AD DC, OpenLDAP slapd, Mono for the .NET client, Chromium) when run as root
#     on Debian/Ubuntu; then the suite is strict: a test that would skip for a missing server fails.
#     Otherwise it says what is missing and those tests are skipped, with the reason.
#   - a virtual environment (VENV, default .venv) with ssobridge and its test dependencies, made with
#     PYTHON if set, else the first of python3, python3.13, python3.12, python3.11 that is 3.11 or newer.
#     A venv made by another Python version is made again.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k login -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/support/install-deps.sh
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
  export SSOBRIDGE_STRICT=1  # everything the tests need was installed above: a skip would hide a failure
fi

version_of() { "$1" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null; }
supported() { "$1" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3 python3.13 python3.12 python3.11; do
    if command -v "$candidate" >/dev/null && supported "$candidate"; then
      python=$candidate
      break
    fi
  done
fi
if [ -z "$python" ] || ! supported "$python"; then
  echo "tests/run.sh: ssobridge needs Python 3.11 or newer (3.11, 3.12 and 3.13 are tested): none found as" \
       "${python:-python3, python3.13, python3.12 or python3.11}; set PYTHON=/path/to/python3" >&2
  exit 2
fi

venv=${VENV:-.venv}
wanted=$(version_of "$python")
if [ -x "$venv/bin/python" ] && [ "$(version_of "$venv/bin/python")" != "$wanted" ]; then
  echo "tests/run.sh: $venv was made with Python $(version_of "$venv/bin/python"); making it again with $wanted"
  rm -rf "$venv"
fi
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
echo "tests/run.sh: Python $("$venv/bin/python" -c 'import platform; print(platform.python_version())') in $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e '.[test]'
exec "$venv/bin/python" -m pytest "$@"
