/**
 * The viewer page: OpenSeadragon (served from the npm package, no CDN) over the image's IIIF
 * endpoint. Kept as strings in a module so that the build (tsc) carries them into dist/.
 * The page has no inline script, so a strict Content-Security-Policy applies.
 */

/** Escapes text for HTML content and attribute values. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** The HTML page of `/view/{cid}`; URLs are relative to it, so the server may sit under a path prefix. */
export function viewerPage(cid: string, info: { width: number; height: number; levels: number; drawer?: string }): string {
  const id = escapeHtml(cid)
  const drawer = info.drawer === undefined ? '' : ` data-drawer="${escapeHtml(info.drawer)}"`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tessera · ${id}</title>
<style>
html, body { margin: 0; height: 100%; background: #111; color: #ddd; font: 13px/1.4 system-ui, sans-serif; }
#viewer { position: absolute; inset: 0; }
#status { position: absolute; left: 8px; bottom: 8px; padding: 4px 8px; background: rgba(0, 0, 0, .6); border-radius: 4px; pointer-events: none; }
</style>
</head>
<body>
<div id="viewer" data-info="../iiif/3/${id}/info.json" data-prefix="../viewer/images/"${drawer}></div>
<div id="status">${info.width} × ${info.height} px · ${info.levels} stored level(s) · ${id}</div>
<script src="../viewer/openseadragon.min.js"></script>
<script src="../viewer/viewer.js"></script>
</body>
</html>
`
}

/**
 * The page's script: opens the IIIF source and keeps a summary in `window.tessera` (tiles
 * loaded, failures, whether every visible tile is loaded) for people and for the browser test.
 */
export const VIEWER_SCRIPT = `'use strict'
;(function () {
  var element = document.getElementById('viewer')
  var state = (window.tessera = { opened: false, fullyLoaded: false, tilesLoaded: 0, tileFailures: 0, errors: [] })
  var options = {
    element: element,
    prefixUrl: element.dataset.prefix,
    tileSources: element.dataset.info,
    showNavigator: true,
    navigatorAutoFade: false,
    maxZoomPixelRatio: 4,
    visibilityRatio: 0.5,
    crossOriginPolicy: 'Anonymous',
    timeout: 60000
  }
  // ?drawer=canvas: OpenSeadragon's 2D canvas drawer, much faster than WebGL without a GPU.
  if (element.dataset.drawer) options.drawer = element.dataset.drawer
  var viewer = OpenSeadragon(options)
  window.tesseraViewer = viewer
  viewer.addHandler('open', function () {
    state.opened = true
    var item = viewer.world.getItemAt(0)
    state.fullyLoaded = item.getFullyLoaded()
    item.addHandler('fully-loaded-change', function (event) { state.fullyLoaded = event.fullyLoaded })
  })
  viewer.addHandler('open-failed', function (event) { state.errors.push('open failed: ' + event.message) })
  viewer.addHandler('tile-loaded', function () { state.tilesLoaded++ })
  viewer.addHandler('tile-load-failed', function (event) {
    state.tileFailures++
    state.errors.push('tile failed: ' + event.message)
  })
})()
`
