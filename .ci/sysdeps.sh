#!/bin/sh
# Install the Debian packages named on the command line if any is missing: with apt-get when running as
# root, otherwise print the one line to run. Never fails the build for a non-root user: the tests that
# need a missing program skip and say why.
missing=""
for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "melsynth: installing system packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    # jackd2 asks about real-time priority unless preseeded.
    echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections 2>/dev/null || true
    apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends $missing >/dev/null \
        || { echo "melsynth: apt-get install$missing failed"; exit 1; }
else
    echo "melsynth: missing system packages; run: sudo apt-get install$missing"
fi
