#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run): installs what the tests need, then runs pytest.
#   - Debian packages (Samba AD DC, OpenLDAP slapd, Mono for the .NET client) when run as root on
#     Debian/Ubuntu; otherwise it says what is missing and those tests are skipped.
#   - a virtual environment in .venv with ssobridge and its test dependencies.
# Extra arguments go to pytest, e.g. `bash tests/run.sh -k login -x`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/support/install-deps.sh

python=${PYTHON:-}
if [ -z "$python" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null && "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      python=$candidate
      break
    fi
  done
fi
if [ -z "$python" ]; then
  echo "ssobridge needs Python 3.11 (spyne 2.14 does not import on 3.12+); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi

if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
exec .venv/bin/python -m pytest "$@"
