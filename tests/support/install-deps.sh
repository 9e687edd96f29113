#!/usr/bin/env bash
# Installs the Debian packages the tests need: a Samba AD DC and OpenLDAP slapd (real directories),
# faketime and openssl, MIT krb5's headers and gcc (pip builds pyspnego[kerberos]'s gssapi and krb5 from
# source on Linux), Mono for the .NET client test, and chromium with its driver for the sign-in page.
#   - As root on Debian/Ubuntu: apt-get --no-install-recommends, only what is missing (a no-op in well
#     under a second when all is there). No service is started or configured: slapd is preseeded with
#     slapd/no_configuration, and package scripts may not start daemons while we install.
#   - Otherwise: says what is missing and exits 0; the tests that need it are skipped with a reason.
set -euo pipefail

packages=(
  samba samba-ad-dc samba-ad-provision samba-dsdb-modules winbind krb5-user ldb-tools tdb-tools  # Samba AD DC
  slapd ldap-utils                                                                     # OpenLDAP
  faketime openssl
  libkrb5-dev gcc python3-dev                                                          # pip builds gssapi, krb5
  mono-mcs libmono-system-web-services4.0-cil                                          # .NET client
  chromium chromium-driver                                                             # the sign-in page in a browser
)

installed() {
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = "installed" ]
}

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "install-deps: not a Debian/Ubuntu system; install these (or equivalents) yourself: ${packages[*]}"
  exit 0
fi

missing=()
for package in "${packages[@]}"; do
  installed "$package" || missing+=("$package")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: not root; missing Debian packages: ${missing[*]}"
  echo "install-deps: run as root: bash tests/support/install-deps.sh (directory tests are skipped meanwhile)"
  exit 0
fi

export DEBIAN_FRONTEND=noninteractive
# No system slapd database: the tests run their own slapd.conf.
echo "slapd slapd/no_configuration boolean true" | debconf-set-selections

# Keep package scripts from starting smbd, nmbd, slapd...: exit code 101 means "action forbidden".
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  trap 'rm -f "$policy"' EXIT
fi

echo "install-deps: installing ${missing[*]}"
apt-get update -qq
available=()
for package in "${missing[@]}"; do
  if [ -n "$(apt-cache policy "$package" 2>/dev/null | awk '/Candidate:/ && $2 != "(none)" {print $2}')" ]; then
    available+=("$package")
  else
    echo "install-deps: no package $package in this distribution's sources; its tests will be skipped"
  fi
done
if [ ${#available[@]} -gt 0 ]; then
  apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confold "${available[@]}" >/dev/null
fi
echo "install-deps: done"
