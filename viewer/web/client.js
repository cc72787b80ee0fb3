/* anchorsplat viewer, client mode: the browser draws and animates the avatar on its own GPU.
 *
 * Injected by the server (anchorsplat.viewer.clientmode) together with the web export's player (player.js, one
 * implementation): the avatar arrives once (#anchorsplat-client-avatar: the web export's payload, Gaussians with
 * top-4 joint weights and expression deltas); then, per frame, only the pose the server's audio-to-motion made
 * (localStorage `viser-user:` + motionKey + "." + (n % slots): {n, r: joint rotations xyzw, t: root, w:
 * expression weights}, a few KB) and, when the view moves, viser's camera (cameraKey: {rows, t, fovY}). The
 * player skins every Gaussian in its vertex shader, on a transparent canvas laid exactly over viser's (clicks go
 * through to viser, which keeps orbiting). Page state for tests: window.anchorsplatClient.frames holds
 * [timeMs, frameMs (posing + sorting + draw calls), motion n, sum of the skinning matrices].
 */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("anchorsplat-client-config").textContent);
  var raw = JSON.parse(document.getElementById("anchorsplat-client-avatar").textContent);
  if (window.anchorsplatClient && window.anchorsplatClient.stop) window.anchorsplatClient.stop();
  var state = { frames: [], motions: 0, stop: null };
  window.anchorsplatClient = state;

  var canvas = document.createElement("canvas");
  canvas.id = "anchorsplat-client";
  canvas.style.cssText = "position:fixed;left:0;top:0;width:0;height:0;pointer-events:none;z-index:1";
  document.body.appendChild(canvas);
  function place() {  // over the largest other canvas: viser's 3D view
    var best = null, area = 0;
    document.querySelectorAll("canvas").forEach(function (c) {
      if (c === canvas) return;
      var r = c.getBoundingClientRect();
      if (r.width * r.height > area) { area = r.width * r.height; best = r; }
    });
    if (!best) return;
    canvas.style.left = best.left + "px";
    canvas.style.top = best.top + "px";
    canvas.style.width = best.width + "px";
    canvas.style.height = best.height + "px";
  }

  var last = [], lastN = -1, motion = null, camera = null, lastCamera = null;
  function poll() {
    for (var slot = 0; slot < config.slots; slot++) {
      var text = localStorage.getItem("viser-user:" + config.motionKey + "." + slot);
      if (text === null || text === last[slot]) continue;
      last[slot] = text;
      var m = JSON.parse(text);
      if (m.n > lastN) {
        lastN = m.n;
        motion = window.AnchorsplatPose.decodeMotion(null, m);
        state.motions++;
      }
    }
    var c = localStorage.getItem("viser-user:" + config.cameraKey);
    if (c !== null && c !== lastCamera) { lastCamera = c; camera = JSON.parse(c); }
  }

  place();
  var player = window.AnchorsplatPlayer.start(raw, {
    canvas: canvas, interactive: false, title: false, background: [0, 0, 0, 0],
    motion: function () { place(); poll(); return motion; },
    camera: function () { return camera; },
    onFrame: function (info) {
      var sum = 0, A = info.pose.A;
      for (var i = 0; i < A.length; i++) sum += A[i];
      state.frames.push([performance.now(), info.frameMs, lastN, sum]);
      if (state.frames.length > 4000) state.frames.splice(0, 1000);
    },
  });
  state.stop = function () { player.stop(); canvas.remove(); };
})();
