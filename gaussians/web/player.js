/* anchorsplat web player: a minimal WebGL2 Gaussian-splat renderer with linear blend skinning on the GPU.
 *
 * Plain script (no modules, no third-party code) so the exported folder opens from file:// and offline.
 * Data comes from avatar.js (window.ANCHORSPLAT_AVATAR, written by anchorsplat.gaussians.export_web):
 * canonical Gaussians with top-4 joint weights and sparse expression deltas (the same conversion as the .glb),
 * the skeleton (parents, rest joint positions; rest rotations are identity), and an optional animation
 * (per-frame local joint rotations xyzw, root translation, expression weights).
 *
 * Per frame: morph targets on the CPU (sparse, only the Gaussians an expression moves), forward kinematics and
 * skinning matrices on the CPU (J joints), skinning + EWA projection of every Gaussian in the vertex shader,
 * back-to-front order from a counting sort of the skinned centres' depths, premultiplied alpha blending.
 * Camera: OpenCV convention (x right, y down, z forward) like the rest of anchorsplat; drag to orbit, wheel to
 * zoom. URL hash options: #t=1.5 (freeze at that time), #yaw=30, #pitch=10, #hud=0 (hide the text).
 */
(function (root) {
  "use strict";

  // ---- data ----

  function decode(b64, Type) {
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    return new Type(bytes.buffer);
  }

  function loadAvatar(raw) {
    const b = raw.buffers;
    const av = {
      count: raw.count,
      numJoints: raw.numJoints,
      parents: raw.parents,
      jointsRest: new Float32Array(raw.jointsRest),
      expressionNames: raw.expressionNames,
      centers: decode(b.centers, Float32Array),
      quats: decode(b.quats, Float32Array),
      scales: decode(b.scales, Float32Array),
      colors: decode(b.colors, Uint8Array),
      joints: decode(b.joints, Uint16Array),
      weights: decode(b.weights, Float32Array),
      morphs: raw.morphs.map((m) => ({ index: decode(m.index, Uint32Array), delta: decode(m.delta, Float32Array) })),
      anim: null,
    };
    if (raw.animation) {
      const a = raw.animation;
      av.anim = {
        fps: a.fps,
        frames: a.frames,
        rotations: decode(a.rotations, Float32Array),
        translations: decode(a.translations, Float32Array),
        weights: decode(a.weights, Float32Array),
      };
    }
    return av;
  }

  // ---- posing (the same math as anchorsplat.gaussians.rig / rigged.pose_lbs) ----

  /** Local joint rotations (xyzw, J*4), root translation (3) and expression weights (E) at time t (seconds). */
  function sampleMotion(av, t) {
    const J = av.numJoints, E = av.expressionNames.length;
    const out = { rotations: new Float32Array(J * 4), root: new Float32Array(3), weights: new Float32Array(E) };
    if (!av.anim) {
      for (let j = 0; j < J; j++) out.rotations[4 * j + 3] = 1;
      out.root.set(av.jointsRest.subarray(0, 3));
      return out;
    }
    const a = av.anim;
    const duration = (a.frames - 1) / a.fps;
    const local = duration > 0 ? ((t % (duration + 1 / a.fps)) + duration + 1 / a.fps) % (duration + 1 / a.fps) : 0;
    const f = Math.min(local * a.fps, a.frames - 1);
    const i0 = Math.floor(f), i1 = Math.min(i0 + 1, a.frames - 1), u = f - i0;
    for (let j = 0; j < J; j++) {
      const p = a.rotations.subarray((i0 * J + j) * 4, (i0 * J + j) * 4 + 4);
      const q = a.rotations.subarray((i1 * J + j) * 4, (i1 * J + j) * 4 + 4);
      const s = p[0] * q[0] + p[1] * q[1] + p[2] * q[2] + p[3] * q[3] < 0 ? -1 : 1;
      let n = 0;
      for (let k = 0; k < 4; k++) {
        const v = (1 - u) * p[k] + u * s * q[k];
        out.rotations[4 * j + k] = v;
        n += v * v;
      }
      n = Math.sqrt(n) || 1;
      for (let k = 0; k < 4; k++) out.rotations[4 * j + k] /= n;
    }
    for (let k = 0; k < 3; k++) out.root[k] = (1 - u) * a.translations[3 * i0 + k] + u * a.translations[3 * i1 + k];
    for (let e = 0; e < E; e++) out.weights[e] = (1 - u) * a.weights[E * i0 + e] + u * a.weights[E * i1 + e];
    return out;
  }

  /** Skinning transforms T_world_joint @ T_joint_rest as row-major 3x4 matrices (J*12 floats). */
  function skinningMatrices(av, motion, out) {
    const J = av.numJoints, rest = av.jointsRest, world = new Float32Array(J * 12);
    out = out || new Float32Array(J * 12);
    for (let j = 0; j < J; j++) {
      const q = motion.rotations.subarray(4 * j, 4 * j + 4);
      const [x, y, z, w] = q;
      const R = [
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
      ];
      const p = av.parents[j];
      const o = p < 0 ? motion.root : [rest[3 * j] - rest[3 * p], rest[3 * j + 1] - rest[3 * p + 1], rest[3 * j + 2] - rest[3 * p + 2]];
      const W = world.subarray(12 * j, 12 * j + 12);
      if (p < 0) {
        for (let r = 0; r < 3; r++) {
          W[4 * r] = R[3 * r]; W[4 * r + 1] = R[3 * r + 1]; W[4 * r + 2] = R[3 * r + 2]; W[4 * r + 3] = o[r];
        }
      } else {
        const P = world.subarray(12 * p, 12 * p + 12);
        for (let r = 0; r < 3; r++) {
          for (let c = 0; c < 3; c++) W[4 * r + c] = P[4 * r] * R[c] + P[4 * r + 1] * R[3 + c] + P[4 * r + 2] * R[6 + c];
          W[4 * r + 3] = P[4 * r] * o[0] + P[4 * r + 1] * o[1] + P[4 * r + 2] * o[2] + P[4 * r + 3];
        }
      }
      for (let r = 0; r < 3; r++) {
        for (let c = 0; c < 3; c++) out[12 * j + 4 * r + c] = W[4 * r + c];
        out[12 * j + 4 * r + 3] = W[4 * r + 3] - (W[4 * r] * rest[3 * j] + W[4 * r + 1] * rest[3 * j + 1] + W[4 * r + 2] * rest[3 * j + 2]);
      }
    }
    return out;
  }

  /** Canonical centres plus the weighted expression deltas (xyz per Gaussian). */
  function morphedCenters(av, weights, out) {
    out = out || new Float32Array(av.count * 3);
    out.set(av.centers);
    av.morphs.forEach((m, e) => {
      const w = weights[e];
      if (!w) return;
      for (let k = 0; k < m.index.length; k++) {
        const i = 3 * m.index[k];
        out[i] += w * m.delta[3 * k]; out[i + 1] += w * m.delta[3 * k + 1]; out[i + 2] += w * m.delta[3 * k + 2];
      }
    });
    return out;
  }

  /** Linear blend skinning of the centres (the vertex shader does the same for centres and covariances). */
  function posedCenters(av, A, centers, out) {
    out = out || new Float32Array(av.count * 3);
    for (let i = 0; i < av.count; i++) {
      const x = centers[3 * i], y = centers[3 * i + 1], z = centers[3 * i + 2];
      let px = 0, py = 0, pz = 0;
      for (let k = 0; k < 4; k++) {
        const w = av.weights[4 * i + k];
        if (!w) continue;
        const m = 12 * av.joints[4 * i + k];
        px += w * (A[m] * x + A[m + 1] * y + A[m + 2] * z + A[m + 3]);
        py += w * (A[m + 4] * x + A[m + 5] * y + A[m + 6] * z + A[m + 7]);
        pz += w * (A[m + 8] * x + A[m + 9] * y + A[m + 10] * z + A[m + 11]);
      }
      out[3 * i] = px; out[3 * i + 1] = py; out[3 * i + 2] = pz;
    }
    return out;
  }

  function poseAt(av, t, given) {
    const motion = given || sampleMotion(av, t);
    const A = skinningMatrices(av, motion);
    const centers = morphedCenters(av, motion.weights);
    return { motion, A, centers, posed: posedCenters(av, A, centers) };
  }

  /** Per-frame motion as the viewer streams it: {r: base64 xyzw J*4, t: [x, y, z], w: base64 E} -> a motion. */
  function decodeMotion(av, m) {
    return { rotations: decode(m.r, Float32Array), root: new Float32Array(m.t), weights: decode(m.w, Float32Array) };
  }

  root.AnchorsplatPose = {
    decode, loadAvatar, sampleMotion, skinningMatrices, morphedCenters, posedCenters, poseAt, decodeMotion,
  };

  // ---- rendering ----

  const VERTEX_SHADER = `#version 300 es
precision highp float;
precision highp int;
precision highp sampler2D;
uniform sampler2D uSplats;   // 5 texels per Gaussian: quat xyzw | scale xyz, opacity | rgb | joints | weights
uniform sampler2D uCenters;  // 1 texel per Gaussian: morphed canonical centre
uniform sampler2D uJoints;   // 3 texels per joint: rows of the 3x4 skinning matrix
uniform mat3 uRcw;           // world -> camera rotation (OpenCV axes)
uniform vec3 uTcw;
uniform vec2 uFocal;
uniform vec2 uViewport;
layout(location = 0) in vec2 aCorner;
layout(location = 1) in uint aIndex;
out vec3 vColor;
out float vOpacity;
out vec2 vUv;

vec4 texel(sampler2D t, int i) {
  int w = textureSize(t, 0).x;
  return texelFetch(t, ivec2(i % w, i / w), 0);
}

void main() {
  int i = int(aIndex);
  vec4 q = texel(uSplats, 5 * i);
  vec4 so = texel(uSplats, 5 * i + 1);
  vec4 rgb = texel(uSplats, 5 * i + 2);
  vec4 jf = texel(uSplats, 5 * i + 3);
  vec4 wt = texel(uSplats, 5 * i + 4);
  vec4 r0 = vec4(0.0), r1 = vec4(0.0), r2 = vec4(0.0);
  for (int k = 0; k < 4; k++) {
    float w = wt[k];
    if (w == 0.0) continue;
    int j = int(jf[k] + 0.5);
    r0 += w * texel(uJoints, 3 * j);
    r1 += w * texel(uJoints, 3 * j + 1);
    r2 += w * texel(uJoints, 3 * j + 2);
  }
  vec4 c = vec4(texel(uCenters, i).xyz, 1.0);
  vec3 world = vec3(dot(r0, c), dot(r1, c), dot(r2, c));
  mat3 A = transpose(mat3(r0.xyz, r1.xyz, r2.xyz));
  float x = q.x, y = q.y, z = q.z, s = q.w;
  mat3 R = mat3(
    1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y + s * z), 2.0 * (x * z - s * y),
    2.0 * (x * y - s * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z + s * x),
    2.0 * (x * z + s * y), 2.0 * (y * z - s * x), 1.0 - 2.0 * (x * x + y * y));
  mat3 M = uRcw * A * R * mat3(so.x, 0.0, 0.0, 0.0, so.y, 0.0, 0.0, 0.0, so.z);
  mat3 cov = M * transpose(M);
  vec3 p = uRcw * world + uTcw;
  if (p.z < 0.02) { gl_Position = vec4(0.0, 0.0, 2.0, 1.0); return; }
  mat3 J = mat3(uFocal.x / p.z, 0.0, 0.0, 0.0, uFocal.y / p.z, 0.0,
                -uFocal.x * p.x / (p.z * p.z), -uFocal.y * p.y / (p.z * p.z), 0.0);
  mat3 cov2 = J * cov * transpose(J);
  float a = cov2[0][0] + 0.3, b = cov2[0][1], d = cov2[1][1] + 0.3;  // + eps2d, as gsplat
  float mid = 0.5 * (a + d), rad = sqrt(max(0.25 * (a - d) * (a - d) + b * b, 0.0));
  float l1 = mid + rad, l2 = max(mid - rad, 0.01);
  vec2 v1 = abs(b) > 1e-9 ? normalize(vec2(b, l1 - a)) : (a >= d ? vec2(1.0, 0.0) : vec2(0.0, 1.0));
  vec2 v2 = vec2(-v1.y, v1.x);
  vec2 centre = uFocal * p.xy / p.z + 0.5 * uViewport;
  vec2 offset = aCorner.x * min(3.0 * sqrt(l1), 2048.0) * v1 + aCorner.y * min(3.0 * sqrt(l2), 2048.0) * v2;
  vec2 pixel = centre + offset;
  gl_Position = vec4(pixel.x / uViewport.x * 2.0 - 1.0, 1.0 - pixel.y / uViewport.y * 2.0, 0.0, 1.0);
  vColor = rgb.rgb;
  vOpacity = so.w;
  vUv = vec2(dot(offset, v1) / sqrt(l1), dot(offset, v2) / sqrt(l2));
}`;

  const FRAGMENT_SHADER = `#version 300 es
precision highp float;
in vec3 vColor;
in float vOpacity;
in vec2 vUv;
out vec4 fragColor;
void main() {
  float alpha = min(0.99, vOpacity * exp(-0.5 * dot(vUv, vUv)));
  if (alpha < 1.0 / 255.0) discard;
  fragColor = vec4(vColor * alpha, alpha);
}`;

  function compile(gl, type, source) {
    const shader = gl.createShader(type);
    gl.shaderSource(shader, source);
    gl.compileShader(shader);
    if (!gl.getShaderParameter(shader, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(shader));
    return shader;
  }

  function dataTexture(gl, unit, texelsPerItem, count) {
    const width = 2048, height = Math.max(1, Math.ceil((texelsPerItem * count) / width));
    const texture = gl.createTexture();
    gl.activeTexture(gl.TEXTURE0 + unit);
    gl.bindTexture(gl.TEXTURE_2D, texture);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MIN_FILTER, gl.NEAREST);
    gl.texParameteri(gl.TEXTURE_2D, gl.TEXTURE_MAG_FILTER, gl.NEAREST);
    gl.texStorage2D(gl.TEXTURE_2D, 1, gl.RGBA32F, width, height);
    const staging = new Float32Array(width * height * 4);
    return {
      upload(data) {
        staging.set(data);
        gl.activeTexture(gl.TEXTURE0 + unit);
        gl.bindTexture(gl.TEXTURE_2D, texture);
        gl.texSubImage2D(gl.TEXTURE_2D, 0, 0, 0, width, height, gl.RGBA, gl.FLOAT, staging);
      },
    };
  }

  function splatTexels(av) {
    const n = av.count, out = new Float32Array(n * 20);
    for (let i = 0; i < n; i++) {
      const o = 20 * i;
      out.set(av.quats.subarray(4 * i, 4 * i + 4), o);
      out.set(av.scales.subarray(3 * i, 3 * i + 3), o + 4);
      out[o + 7] = av.colors[4 * i + 3] / 255;
      for (let k = 0; k < 3; k++) out[o + 8 + k] = av.colors[4 * i + k] / 255;
      for (let k = 0; k < 4; k++) out[o + 12 + k] = av.joints[4 * i + k];
      out.set(av.weights.subarray(4 * i, 4 * i + 4), o + 16);
    }
    return out;
  }

  function hashOptions() {
    const out = {};
    for (const part of location.hash.replace(/^#/, "").split("&")) {
      const [k, v] = part.split("=");
      if (k && v !== undefined && isFinite(parseFloat(v))) out[k] = parseFloat(v);
    }
    return out;
  }

  /**
   * Start drawing `raw` (the avatar.js payload). The web export calls start(raw); the viewer's client mode passes
   * `host` hooks: {canvas, motion(time) -> motion | null (null: the avatar's own animation), camera() ->
   * {rows, t, fovY} | null (null: the orbit camera), background: [r, g, b, a], interactive, title (false: leave
   * document.title alone), onFrame({frameMs, pose})}. Returns {stop()}.
   */
  function start(raw, host) {
    host = host || {};
    const status = host.canvas ? { textContent: "" } : document.getElementById("status");
    const canvas = host.canvas || document.getElementById("view");
    const setTitle = (text) => { if (host.title !== false) document.title = text; };
    const gl = canvas.getContext("webgl2", { antialias: false, premultipliedAlpha: true, preserveDrawingBuffer: true });
    if (!gl) {
      status.textContent = "This browser has no WebGL2: the avatar cannot be shown.";
      setTitle("anchorsplat: no webgl2");
      return { stop() {} };
    }
    const options = host.canvas ? {} : hashOptions();
    if (options.hud === 0) document.getElementById("hud").hidden = true;
    const av = loadAvatar(raw);
    const program = gl.createProgram();
    gl.attachShader(program, compile(gl, gl.VERTEX_SHADER, VERTEX_SHADER));
    gl.attachShader(program, compile(gl, gl.FRAGMENT_SHADER, FRAGMENT_SHADER));
    gl.linkProgram(program);
    if (!gl.getProgramParameter(program, gl.LINK_STATUS)) throw new Error(gl.getProgramInfoLog(program));
    gl.useProgram(program);
    const u = (name) => gl.getUniformLocation(program, name);

    const splats = dataTexture(gl, 0, 5, av.count);
    const centers = dataTexture(gl, 1, 1, av.count);
    const joints = dataTexture(gl, 2, 3, av.numJoints);
    splats.upload(splatTexels(av));
    gl.uniform1i(u("uSplats"), 0);
    gl.uniform1i(u("uCenters"), 1);
    gl.uniform1i(u("uJoints"), 2);

    const vao = gl.createVertexArray();
    gl.bindVertexArray(vao);
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, new Float32Array([-1, -1, 1, -1, -1, 1, 1, 1]), gl.STATIC_DRAW);
    gl.enableVertexAttribArray(0);
    gl.vertexAttribPointer(0, 2, gl.FLOAT, false, 0, 0);
    const orderBuffer = gl.createBuffer();
    gl.bindBuffer(gl.ARRAY_BUFFER, orderBuffer);
    gl.bufferData(gl.ARRAY_BUFFER, av.count * 4, gl.DYNAMIC_DRAW);
    gl.enableVertexAttribArray(1);
    gl.vertexAttribIPointer(1, 1, gl.UNSIGNED_INT, 0, 0);
    gl.vertexAttribDivisor(1, 1);

    gl.disable(gl.DEPTH_TEST);
    gl.enable(gl.BLEND);
    gl.blendFunc(gl.ONE, gl.ONE_MINUS_SRC_ALPHA);
    const bg = host.background || raw.background || [0.12, 0.12, 0.14];
    gl.clearColor(bg[0], bg[1], bg[2], bg.length > 3 ? bg[3] : 1);

    // Orbit camera around the rest-pose bounding box.
    let lo = [Infinity, Infinity, Infinity], hi = [-Infinity, -Infinity, -Infinity];
    for (let i = 0; i < av.count; i++) {
      for (let k = 0; k < 3; k++) {
        lo[k] = Math.min(lo[k], av.centers[3 * i + k]);
        hi[k] = Math.max(hi[k], av.centers[3 * i + k]);
      }
    }
    const target = [0, 1, 2].map((k) => 0.5 * (lo[k] + hi[k]));
    const fovY = (30 * Math.PI) / 180;
    const extent = Math.max(hi[1] - lo[1], Math.hypot(hi[0] - lo[0], hi[2] - lo[2]));
    const cam = { yaw: options.yaw || 0, pitch: options.pitch || 5, distance: (0.6 * extent) / Math.tan(fovY / 2) + 0.5 * extent };

    let dragging = null;
    if (host.interactive !== false) {
      canvas.addEventListener("pointerdown", (e) => { dragging = [e.clientX, e.clientY]; canvas.setPointerCapture(e.pointerId); });
      canvas.addEventListener("pointerup", () => { dragging = null; });
      canvas.addEventListener("pointermove", (e) => {
        if (!dragging) return;
        cam.yaw -= (e.clientX - dragging[0]) * 0.4;
        cam.pitch = Math.max(-85, Math.min(85, cam.pitch + (e.clientY - dragging[1]) * 0.4));
        dragging = [e.clientX, e.clientY];
      });
      canvas.addEventListener("wheel", (e) => { e.preventDefault(); cam.distance *= Math.exp(e.deltaY * 0.001); }, { passive: false });
    }

    const audio = host.canvas ? null : document.getElementById("audio");
    const playButton = host.canvas ? null : document.getElementById("play");
    if (audio && playButton) {
      playButton.hidden = false;
      playButton.addEventListener("click", () => { audio.currentTime = 0; audio.play(); });
    }

    const order = new Uint32Array(av.count), keys = new Uint16Array(av.count), counts = new Uint32Array(65536);
    const clockStart = performance.now();
    let frames = 0, fpsStart = performance.now();

    function cameraPose() {
      const yaw = (cam.yaw * Math.PI) / 180, pitch = (cam.pitch * Math.PI) / 180;
      const eye = [
        target[0] + cam.distance * Math.sin(yaw) * Math.cos(pitch),
        target[1] + cam.distance * Math.sin(pitch),
        target[2] + cam.distance * Math.cos(yaw) * Math.cos(pitch),
      ];
      const zc = [target[0] - eye[0], target[1] - eye[1], target[2] - eye[2]];
      const zn = Math.hypot(...zc);
      const z = zc.map((v) => v / zn);
      const xr = [-z[2], 0, z[0]];  // cross(-up, z) with up = +Y
      const xn = Math.hypot(...xr) || 1;
      const x = xr.map((v) => v / xn);
      const y = [z[1] * x[2] - z[2] * x[1], z[2] * x[0] - z[0] * x[2], z[0] * x[1] - z[1] * x[0]];
      const rows = [x, y, z];
      const t = rows.map((r) => -(r[0] * eye[0] + r[1] * eye[1] + r[2] * eye[2]));
      return { rows, t };
    }

    function sortBackToFront(posed, rows, t) {
      const n = av.count, z = rows[2];
      let zmin = Infinity, zmax = -Infinity;
      const depth = new Float32Array(n);
      for (let i = 0; i < n; i++) {
        const d = z[0] * posed[3 * i] + z[1] * posed[3 * i + 1] + z[2] * posed[3 * i + 2] + t[2];
        depth[i] = d;
        if (d < zmin) zmin = d;
        if (d > zmax) zmax = d;
      }
      const scale = zmax > zmin ? 65535 / (zmax - zmin) : 0;
      counts.fill(0);
      for (let i = 0; i < n; i++) {
        keys[i] = 65535 - Math.floor((depth[i] - zmin) * scale);  // far first
        counts[keys[i]]++;
      }
      for (let k = 1; k < 65536; k++) counts[k] += counts[k - 1];
      for (let i = n - 1; i >= 0; i--) order[--counts[keys[i]]] = i;
    }

    let stopped = false;
    function frame(now) {
      if (stopped) return;
      const began = performance.now();
      const width = Math.floor(canvas.clientWidth * devicePixelRatio), height = Math.floor(canvas.clientHeight * devicePixelRatio);
      if (canvas.width !== width || canvas.height !== height) { canvas.width = width; canvas.height = height; }
      let time = (now - clockStart) / 1000;
      if (audio && !audio.paused) time = audio.currentTime;
      if (options.t !== undefined) time = options.t;
      const pose = poseAt(av, time, host.motion ? host.motion(time) : null);
      centers.upload(expand4(pose.centers));
      joints.upload(pose.A);
      const view = host.camera ? host.camera() : null;
      const { rows, t } = view || cameraPose();
      const fov = view ? view.fovY : fovY;
      sortBackToFront(pose.posed, rows, t);
      gl.bindBuffer(gl.ARRAY_BUFFER, orderBuffer);
      gl.bufferSubData(gl.ARRAY_BUFFER, 0, order);
      const f = (0.5 * height) / Math.tan(fov / 2);
      gl.uniformMatrix3fv(u("uRcw"), true, rows.flat());
      gl.uniform3fv(u("uTcw"), t);
      gl.uniform2f(u("uFocal"), f, f);
      gl.uniform2f(u("uViewport"), width, height);
      gl.viewport(0, 0, width, height);
      gl.clear(gl.COLOR_BUFFER_BIT);
      gl.drawArraysInstanced(gl.TRIANGLE_STRIP, 0, 4, av.count);
      frames++;
      if (now - fpsStart > 1000) {
        status.textContent = `${av.count} Gaussians, ${av.numJoints} joints, ${(frames * 1000 / (now - fpsStart)).toFixed(0)} fps`;
        frames = 0;
        fpsStart = now;
      }
      setTitle("anchorsplat: rendered");
      if (host.onFrame) host.onFrame({ frameMs: performance.now() - began, pose });
      requestAnimationFrame(frame);
    }

    const centers4 = new Float32Array(av.count * 4);
    function expand4(xyz) {
      for (let i = 0; i < av.count; i++) {
        centers4[4 * i] = xyz[3 * i]; centers4[4 * i + 1] = xyz[3 * i + 1]; centers4[4 * i + 2] = xyz[3 * i + 2];
      }
      return centers4;
    }

    status.textContent = `${av.count} Gaussians, ${av.numJoints} joints`;
    requestAnimationFrame(frame);
    return { stop() { stopped = true; } };
  }

  root.AnchorsplatPlayer = { start };

  if (typeof document !== "undefined" && root.ANCHORSPLAT_AVATAR) {
    window.addEventListener("load", () => {
      try {
        start(root.ANCHORSPLAT_AVATAR);
      } catch (err) {
        document.getElementById("status").textContent = "anchorsplat player error: " + err.message;
        document.title = "anchorsplat: error";
        throw err;
      }
    });
  }
})(this);
