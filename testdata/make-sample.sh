#!/usr/bin/env bash
# Rebuilds testdata/dragonfly.png, the demo's sample image: "Dragonfly" by Bolly from Debian's
# lomiri-wallpapers package (CC-BY-SA), downscaled to 845x634 (odd sizes on purpose) by libvips.
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && apt-get download lomiri-wallpapers-20.04 >/dev/null && dpkg-deb -x lomiri-wallpapers-20.04_*.deb x)
vips resize "$tmp"/x/usr/share/backgrounds/Dragonfly_by_Bolly.jpg "$tmp/s.v" 0.2
vips pngsave "$tmp/s.v" dragonfly.png --compression 9
