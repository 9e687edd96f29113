# Sourced by .ci/run: find_python X.Y prints the path of a working python X.Y, or fails naming what it tried.
# Looks on PATH, then in pyenv's versions (its shims answer only for the selected version).
find_python() {
  local version=$1 candidate root
  candidate=$(command -v "python$version" || true)
  if [ -n "$candidate" ] && "$candidate" -c 'import sys' 2>/dev/null; then
    echo "$candidate"
    return 0
  fi
  root=$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for candidate in "$root"/versions/"$version".*/bin/"python$version"; do
    if [ -x "$candidate" ] && "$candidate" -c 'import sys' 2>/dev/null; then
      echo "$candidate"
      return 0
    fi
  done
  echo "CI needs Python $version and found none: no working python$version on PATH nor in $root/versions" >&2
  return 1
}
