#!/usr/bin/env bash
# Runs the official IIIF Image API validator (vendored in test/http/iiif-validator/) against
# `tessera serve` by hand, the way test/http/iiif-validator.test.ts does in the suite: makes the
# validator's test image (10 x 10 squares of 100 pixels in the colours of its own table), imports
# it into a throw-away store, twice (by CID, and as entry squares.png of dataset iiif-validator),
# serves that store on 127.0.0.1, and validates both identifiers at level 2 (or at the level
# given as $1). Needs a build (npm ci or npm run build) and scripts/setup-debian.sh's packages.
# Exit status: the number of failures.
set -euo pipefail
cd "$(dirname "$0")/.."
level=${1:-2}
port=${TESSERA_VALIDATE_PORT:-18181}
work=$(mktemp -d /tmp/tessera-iiif-validate.XXXXXX)
server=""
cleanup() {
  [ -n "$server" ] && kill "$server" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

validator=test/http/iiif-validator
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the vendored tree
mkdir -p "$work/images"
(cd "$validator" && /usr/bin/python3 - "$work/images/squares.png" <<'PY'
import sys
from PIL import Image
from iiif_validator.validator import ValidationInfo
colors = ValidationInfo().colorInfo
image = Image.new('RGB', (1000, 1000))
for x in range(10):
    for y in range(10):
        image.paste(colors[x][y], (x * 100, y * 100, x * 100 + 100, y * 100 + 100))
image.save(sys.argv[1])
PY
) >/dev/null

export TESSERA_STORE="$work/store"
cid=$(node bin/tessera.js import "$work/images/squares.png" --pyramid)
node bin/tessera.js import "$work/images" --dataset iiif-validator --pyramid >/dev/null
node bin/tessera.js serve --host 127.0.0.1 --port "$port" --log-level warn &
server=$!
for _ in $(seq 1 100); do
  curl -fs "http://127.0.0.1:$port/" >/dev/null 2>&1 && break
  sleep 0.1
done

failures=0
for identifier in "$cid" "iiif-validator%2Fsquares.png"; do
  echo "== identifier $identifier, level $level"
  (cd "$validator" && /usr/bin/python3 iiif-validate.py --server="127.0.0.1:$port" --prefix=iiif/3 \
    --identifier="$identifier" --version=3.0 --level="$level") || failures=$((failures + $?))
done
exit "$failures"
