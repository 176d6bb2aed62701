/**
 * The viewer page: OpenSeadragon (served from the npm package, no CDN) over the image's IIIF
 * endpoint. Kept as strings in a module so that the build (tsc) carries them into dist/.
 * The page has no inline script, so a strict Content-Security-Policy applies.
 */

/** Escapes text for HTML content and attribute values. */
function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

/** What a viewer page shows: one image, or the frames of a dataset (or a directory of one). */
export type ViewerSubject =
  | { readonly kind: 'image'; readonly width: number; readonly height: number; readonly levels: number }
  | { readonly kind: 'dataset'; readonly version: string }

/**
 * The HTML page of `/view/{identifier}`; URLs are relative to it, `root` ('../' per segment of
 * the page's identifier) leading back to the server's root, so the server may sit under a path
 * prefix. An image opens its IIIF info.json; a dataset its Presentation manifest, whose
 * canvases are the frames that the slider, the buttons and the arrow keys flip through.
 */
export function viewerPage(identifier: string, subject: ViewerSubject, options: { root: string; drawer?: string }): string {
  const label = escapeHtml(identifier)
  const id = escapeHtml(encodeURIComponent(identifier))
  const root = escapeHtml(options.root)
  const drawer = options.drawer === undefined ? '' : ` data-drawer="${escapeHtml(options.drawer)}"`
  const source = subject.kind === 'image' ? `data-info="${root}iiif/3/${id}/info.json"` : `data-manifest="${root}iiif/3/${id}/manifest"`
  const status =
    subject.kind === 'image'
      ? `${subject.width} × ${subject.height} px · ${subject.levels} stored level(s) · ${label}`
      : `${label} · version ${escapeHtml(subject.version)}`
  const frames =
    subject.kind === 'image'
      ? ''
      : `
<div id="frames" hidden>
<button id="previous" type="button" title="Previous frame (←)">◀</button>
<select id="page" hidden title="Page of frames"></select>
<input id="slider" type="range" min="1" max="1" value="1" title="Frame">
<button id="next" type="button" title="Next frame (→)">▶</button>
<span id="frame"></span>
</div>`
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tessera · ${label}</title>
<style>
html, body { margin: 0; height: 100%; background: #111; color: #ddd; font: 13px/1.4 system-ui, sans-serif; }
#viewer { position: absolute; inset: 0; }
#status { position: absolute; left: 8px; bottom: 8px; padding: 4px 8px; background: rgba(0, 0, 0, .6); border-radius: 4px; pointer-events: none; }
#frames { position: absolute; left: 50%; bottom: 40px; transform: translateX(-50%); display: flex; gap: 8px; align-items: center; padding: 4px 8px; background: rgba(0, 0, 0, .6); border-radius: 4px; white-space: nowrap; }
#frames input[type=range] { width: min(50vw, 640px); }
#frames button, #frames select { background: #333; color: #ddd; border: 1px solid #555; border-radius: 3px; }
</style>
</head>
<body>
<div id="viewer" ${source} data-prefix="${root}viewer/images/"${drawer}></div>${frames}
<div id="status">${status}</div>
<script src="${root}viewer/openseadragon.min.js"></script>
<script src="${root}viewer/viewer.js"></script>
</body>
</html>
`
}

/**
 * The page's script: picks a drawer, opens the image (or the dataset's frames) and keeps a
 * summary in `window.tessera` (drawer, tiles loaded, failures, whether every visible tile is
 * loaded, the frame shown) for people and for the browser tests.
 */
export const VIEWER_SCRIPT = `'use strict'
;(function () {
  var element = document.getElementById('viewer')
  var state = (window.tessera = { opened: false, fullyLoaded: false, tilesLoaded: 0, tileFailures: 0, errors: [], drawer: null, frame: 0, frames: 0 })

  // OpenSeadragon's WebGL drawer is the fastest with a GPU, and many times slower than its 2D
  // canvas drawer without one (software WebGL: SwiftShader, llvmpipe): 25 s against 0.7 s to
  // reach 1:1 in headless Chromium. failIfMajorPerformanceCaveat refuses a software context;
  // the renderer's name catches the browsers that grant one anyway.
  function pickDrawer(requested) {
    if (requested && requested !== 'auto') return requested
    try {
      var canvas = document.createElement('canvas')
      var options = { failIfMajorPerformanceCaveat: true }
      var gl = canvas.getContext('webgl2', options) || canvas.getContext('webgl', options)
      if (!gl) return 'canvas'
      var debug = gl.getExtension('WEBGL_debug_renderer_info')
      var renderer = debug ? String(gl.getParameter(debug.UNMASKED_RENDERER_WEBGL)) : ''
      var lose = gl.getExtension('WEBGL_lose_context')
      if (lose) lose.loseContext()
      return /swiftshader|llvmpipe|softpipe|software|basic render/i.test(renderer) ? 'canvas' : 'webgl'
    } catch (error) {
      return 'canvas'
    }
  }

  var viewer = OpenSeadragon({
    element: element,
    prefixUrl: element.dataset.prefix,
    drawer: pickDrawer(element.dataset.drawer),
    showNavigator: true,
    navigatorAutoFade: false,
    maxZoomPixelRatio: 4,
    visibilityRatio: 0.5,
    crossOriginPolicy: 'Anonymous',
    timeout: 60000
  })
  window.tesseraViewer = viewer
  state.drawer = viewer.drawer && viewer.drawer.getType ? viewer.drawer.getType() : null
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

  if (element.dataset.info) {
    viewer.open(element.dataset.info)
    return
  }

  // A dataset: its Presentation manifest lists the frames (a Collection of manifests of up to
  // 1000 frames when there are more); each canvas is painted by an image service.
  var controls = document.getElementById('frames')
  var slider = document.getElementById('slider')
  var pages = document.getElementById('page')
  var label = document.getElementById('frame')
  var canvases = []

  function get(url) {
    return fetch(url).then(function (response) {
      if (!response.ok) throw new Error(url + ': ' + response.status)
      return response.json()
    })
  }
  function text(map) {
    if (!map) return ''
    var keys = Object.keys(map)
    return keys.length ? map[keys[0]].join(' ') : ''
  }
  function show(index) {
    if (canvases.length === 0) return
    index = Math.max(0, Math.min(canvases.length - 1, index))
    var canvas = canvases[index]
    var service = canvas.items[0].items[0].body.service[0].id
    state.frame = index + 1
    state.opened = false
    state.fullyLoaded = false
    slider.value = String(index + 1)
    label.textContent = (index + 1) + ' / ' + canvases.length + ' · ' + text(canvas.label)
    viewer.open(service + '/info.json')
  }
  function load(manifest) {
    canvases = manifest.items
    state.frames = canvases.length
    slider.max = String(Math.max(1, canvases.length))
    controls.hidden = false
    show(0)
  }
  slider.addEventListener('input', function () { show(Number(slider.value) - 1) })
  document.getElementById('previous').addEventListener('click', function () { show(state.frame - 2) })
  document.getElementById('next').addEventListener('click', function () { show(state.frame) })
  document.addEventListener('keydown', function (event) {
    if (event.target === slider) return
    if (event.key === 'ArrowLeft') show(state.frame - 2)
    if (event.key === 'ArrowRight') show(state.frame)
  })
  window.tesseraShow = function (frame) { show(frame - 1) }

  get(element.dataset.manifest).then(function (document) {
    if (document.type !== 'Collection') return load(document)
    // Paged: one manifest of up to 1000 frames at a time.
    document.items.forEach(function (item, i) {
      var option = window.document.createElement('option')
      option.value = item.id
      option.textContent = text(item.label)
      pages.appendChild(option)
    })
    pages.hidden = false
    pages.addEventListener('change', function () { get(pages.value).then(load) })
    return get(document.items[0].id).then(load)
  }).catch(function (error) { state.errors.push('manifest: ' + error.message) })
})()
`
