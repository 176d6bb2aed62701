#!/usr/bin/env bash
# Installs the Debian packages the test suite uses as independent readers of Tessera's
# outputs: libvips (vips), GDAL, and Python's numpy, tifffile, PIL and zstandard; Chromium,
# which the viewer tests drive headless through playwright-core (test/http/viewer.test.ts);
# and the dependencies of the official IIIF Image API validator, which
# test/http/iiif-validator.test.ts runs from its vendored copy (bottle, python-magic, lxml, PIL).
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail
packages=(libvips-tools gdal-bin python3-gdal python3-numpy python3-tifffile python3-pil python3-zstandard chromium
  python3-bottle python3-magic python3-lxml)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${missing[@]}"
