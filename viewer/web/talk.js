/* anchorsplat viewer: "talk" — stream the browser microphone to the viewer server, log the motion it sends back.
 *
 * Injected by the server into the tab's panel (anchorsplat.viewer.talk). Config comes from the JSON element
 * #anchorsplat-talk-config: {motionKey, chunk}. Audio: WebAudio at 16 kHz mono (the browser resamples the
 * microphone), cut into chunks of `chunk` samples (<= 20 ms), sent as 16-bit PCM in an "AnchorsplatMicChunk"
 * msgpack message with the tab's secret token, over a websocket of its own to the viser server (viser's client
 * keeps its socket in a web worker; this connection never sends a camera, so the server never makes it a tab).
 * The server's motion comes back through
 * localStorage (`viser-user:` + motionKey + "." + (n % slots), JSON {n, frames: [[frameIndex, jawOpen], ...], seq, sent, ms}); this
 * script records it, and every chunk's loudness, in window.anchorsplatTalk (read by the browser test):
 * chunks: [seq, sentMs, rms, wasSent], motion: [seenMs, frameIndex, jawOpen, seq, sentMs, serverMs].
 */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("anchorsplat-talk-config").textContent);
  if (window.anchorsplatTalk && window.anchorsplatTalk.stop) window.anchorsplatTalk.stop();
  var state = { seq: 0, chunks: [], motion: [], error: null, running: false, stop: null };
  window.anchorsplatTalk = state;

  var socket = new WebSocket(location.href.replace(/^http/, "ws").replace(/#.*$/, ""), [config.protocol]);
  socket.binaryType = "arraybuffer";

  // ---- a minimal msgpack encoder for one flat map of str / number / Uint8Array ----
  function encode(fields) {
    var parts = [], keys = Object.keys(fields);
    function str(s) {
      var b = new TextEncoder().encode(s);
      parts.push(b.length < 32 ? [0xa0 | b.length] : [0xd9, b.length]);
      parts.push(b);
    }
    parts.push([0x80 | keys.length]);
    keys.forEach(function (k) {
      str(k);
      var v = fields[k];
      if (typeof v === "string") str(v);
      else if (v instanceof Uint8Array) {
        parts.push([0xc6, (v.length >>> 24) & 255, (v.length >>> 16) & 255, (v.length >>> 8) & 255, v.length & 255]);
        parts.push(v);
      } else {
        var f = new DataView(new ArrayBuffer(9));
        f.setUint8(0, 0xcb);
        f.setFloat64(1, v);
        parts.push(new Uint8Array(f.buffer));
      }
    });
    var size = parts.reduce(function (n, p) { return n + p.length; }, 0), out = new Uint8Array(size), o = 0;
    parts.forEach(function (p) { out.set(p, o); o += p.length; });
    return out;
  }

  var last = [];
  var poll = setInterval(function () {
    for (var slot = 0; slot < config.slots; slot++) {
      var raw = localStorage.getItem("viser-user:" + config.motionKey + "." + slot);
      if (raw === null || raw === last[slot]) continue;
      last[slot] = raw;
      var m = JSON.parse(raw), now = performance.now();
      m.frames.forEach(function (f) { state.motion.push([now, f[0], f[1], m.seq, m.sent, m.ms]); });
    }
  }, 5);

  navigator.mediaDevices.getUserMedia({
    audio: { channelCount: 1, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  }).then(function (stream) {
    var context = new AudioContext({ sampleRate: 16000 });
    var source = context.createMediaStreamSource(stream);
    var node = context.createScriptProcessor(config.block, 1, 1);
    var pending = new Float32Array(0);
    node.onaudioprocess = function (event) {
      var input = event.inputBuffer.getChannelData(0);
      var all = new Float32Array(pending.length + input.length);
      all.set(pending);
      all.set(input, pending.length);
      var n = config.chunk, start = 0;
      for (; start + n <= all.length; start += n) {
        var pcm = new Int16Array(n), energy = 0;
        for (var i = 0; i < n; i++) {
          var v = Math.max(-1, Math.min(1, all[start + i]));
          pcm[i] = Math.round(v * 32767);
          energy += v * v;
        }
        var seq = state.seq++, now = performance.now(), open = socket.readyState === 1;
        state.chunks.push([seq, now, Math.sqrt(energy / n), open]);
        if (open) {
          socket.send(encode({
            type: "AnchorsplatMicChunk", token: config.token, seq: seq, sample_rate: context.sampleRate, format: "s16le",
            samples: new Uint8Array(pcm.buffer), sent_ms: now,
          }));
        }
      }
      pending = all.slice(start);
    };
    source.connect(node);
    node.connect(context.destination);  // a script processor only runs when connected; its output is silence
    state.running = true;
    state.stop = function () {
      state.running = false;
      clearInterval(poll);
      node.disconnect();
      source.disconnect();
      stream.getTracks().forEach(function (t) { t.stop(); });
      context.close();
      socket.close();
    };
  }).catch(function (err) {
    state.error = String(err);
    clearInterval(poll);
    socket.close();
  });
  state.stop = function () { clearInterval(poll); socket.close(); };
})();
