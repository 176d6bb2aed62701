#!/usr/bin/env bash
# The main job on the embedded default store (or $TESSERA_STORE): import the sample image
# with its pyramid, describe it, crop it in several formats, export it, check the round trip.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -f dist/cli/main.js ] || npm run build
tessera() { bin/tessera "$@"; }
out=demo-output
mkdir -p "$out"

echo "== import testdata/dragonfly.png (845x634 RGB photograph) with its pyramid"
cid=$(tessera import testdata/dragonfly.png --pyramid)
echo "$cid"

echo "== info"
tessera info "$cid"

echo "== crops"
tessera crop "$cid" --region 256,256,300,200 -o "$out/aligned.tiff" --stats            # payloads copied verbatim
tessera crop "$cid" --region 333,180,320,160 -o "$out/dragonfly.png" --stats          # re-cut, decoded
tessera crop "$cid" --region 333,180,320,160 --format tiff --compression deflate -o "$out/dragonfly-deflate.tif"
tessera crop "$cid" --region 0,0,300,200 --format npy -o "$out/corner.npy"
tessera crop "$cid" --region 0,0,300,200 --format pam -o - > "$out/corner.pam"
tessera crop "$cid" --level 2 --region 0,0,211,158 --format png -o "$out/level2.png"
tessera crop "$cid" --region 800,600,100,100 --clip -o "$out/clipped.ppm"

echo "== export the whole image and the smallest level"
tessera export "$cid" -o "$out/roundtrip.png"
tessera export "$cid" --level 2 -o "$out/thumbnail.png"

echo "== verify"
tessera verify "$cid"

echo "== round trip: the export is pixel-identical to the input"
node --input-type=module -e "
import sharp from 'sharp'
const [a, b] = await Promise.all(['testdata/dragonfly.png', '$out/roundtrip.png'].map((f) => sharp(f).raw().toBuffer()))
if (!a.equals(b)) { console.error('MISMATCH'); process.exit(1) }
console.log('identical:', a.length, 'bytes of pixels')
"
ls -l "$out"
