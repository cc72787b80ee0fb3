// Loads anchorsplat exports in headless Chromium and prints what the browser saw as one JSON line.
//
// Usage: node browser_checks.mjs JOB.json
// JOB.json: {"glb": [{"path": PATH, "times": [s...], "details": bool}...], "spz": PATH, "ply": PATH, "web": DIR,
// "webTimes": [s...], "babylon": [{"path": PATH, "shots": [...], "details": bool}...]}, every key optional;
// "details": false reports counts only (for big files). Chromium is the
// system one (ANCHORSPLAT_CHROMIUM, default /usr/bin/chromium) driven by playwright-core.
//
// - glb: three.js's GLTFLoader parses the file twice: plainly (skinned body, morph targets, points, animation; the
//   animation is played with AnimationMixer and at each time the body's vertices are read back with morphs and
//   skinning applied, and the splat centres are skinned with three's bone matrices and the file's JOINTS_0 /
//   WEIGHTS_0), and with three's KHR_gaussian_splatting plugin (splat count, centres, covariances, colours).
// - babylon: Babylon.js's glTF loader (with KHR_gaussian_splatting) loads the glb on a WebGL canvas; what it made
//   of it, and screenshots of the textured mesh like the three.js ones (see checkBabylon).
// - spz / ply: three.js's SPZLoader / GaussianSplatPLYLoader (centres, covariances, colours).
// - web: the exported page opened from file://, frozen at a time; counts the canvas pixels that differ from the
//   background and reads the player's own skinned centres (window.AnchorsplatPose) at webTimes.
// Files are served to the page from a private origin by request interception: nothing goes to the network.
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { chromium } from "playwright-core";

const here = dirname(fileURLToPath(import.meta.url));
const threeRoot = join(here, "node_modules", "three");
const vrmRoot = join(here, "node_modules", "@pixiv", "three-vrm", "lib");
const babylonRoot = join(here, "node_modules", "@babylonjs");
const job = JSON.parse(readFileSync(process.argv[2], "utf8"));
const ORIGIN = "http://anchorsplat.test";
const MIME = { ".js": "text/javascript", ".html": "text/html", ".json": "application/json" };
const PAGE = `<!doctype html><html><head><meta charset="utf-8"><script type="importmap">${JSON.stringify({
  imports: {
    three: "/three/build/three.module.js",
    "three/webgpu": "/three/build/three.webgpu.js",
    "three/tsl": "/three/build/three.tsl.js",
    "three/addons/": "/three/examples/jsm/",
    "@pixiv/three-vrm": "/three-vrm/three-vrm.module.js",
    "@babylonjs/core/": "/babylon/core/",
    "@babylonjs/loaders/": "/babylon/loaders/",
  },
})}</script></head><body></body></html>`;

const executablePath = process.env.ANCHORSPLAT_CHROMIUM || "/usr/bin/chromium";
if (!existsSync(executablePath)) {
  console.error(`Chromium not found at ${executablePath}: install the Debian package chromium or set ANCHORSPLAT_CHROMIUM`);
  process.exit(3);
}
const profile = mkdtempSync(join(tmpdir(), "anchorsplat-chromium-"));
const context = await chromium.launchPersistentContext(profile, {
  executablePath,
  headless: true,
  viewport: { width: 320, height: 320 },
  args: [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--enable-unsafe-swiftshader",
  ],
});
const out = {};
const pageErrors = [];
try {
  const files = {};
  for (const key of ["spz", "ply", "vrm"]) if (job[key]) files[`/files/${key}${extname(job[key])}`] = resolve(job[key]);
  (job.glb || []).forEach((g, i) => { files[`/files/glb${i}.glb`] = resolve(g.path); });
  (job.babylon || []).forEach((g, i) => { files[`/files/babylon${i}.glb`] = resolve(g.path); });
  await context.route("**/*", async (route) => {
    const url = new URL(route.request().url());
    if (url.protocol === "file:") return route.continue();
    if (url.origin !== ORIGIN) return route.abort();  // nothing leaves the machine
    let body = null, type = "application/octet-stream";
    if (url.pathname === "/" || url.pathname === "/index.html") {
      body = PAGE;
      type = "text/html";
    } else if (url.pathname.startsWith("/three/")) {
      const path = resolve(threeRoot, "." + url.pathname.slice("/three".length));
      if (path.startsWith(threeRoot) && existsSync(path)) {
        body = readFileSync(path);
        type = MIME[extname(path)] || type;
      }
    } else if (url.pathname.startsWith("/three-vrm/")) {
      const path = resolve(vrmRoot, "." + url.pathname.slice("/three-vrm".length));
      if (path.startsWith(vrmRoot) && existsSync(path)) {
        body = readFileSync(path);
        type = "text/javascript";
      }
    } else if (url.pathname.startsWith("/babylon/")) {
      const path = resolve(babylonRoot, "." + url.pathname.slice("/babylon".length));
      if (path.startsWith(babylonRoot) && existsSync(path)) {
        body = readFileSync(path);
        type = MIME[extname(path)] || type;
      }
    } else if (files[url.pathname]) {
      body = readFileSync(files[url.pathname]);
    }
    if (body === null) return route.fulfill({ status: 404, body: "not found" });
    return route.fulfill({ status: 200, body, contentType: type });
  });
  const page = await context.newPage();
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  if (job.glb || job.spz || job.ply || job.vrm || job.babylon) {
    await page.goto(`${ORIGIN}/index.html`);
    out.glb = [];
    for (const [i, g] of (job.glb || []).entries()) {
      out.glb.push(await page.evaluate(checkGlb, {
        url: `/files/glb${i}.glb`, times: g.times || [], details: g.details !== false, shots: g.shots || [],
      }));
    }
    if (job.spz) out.spz = await page.evaluate(checkSplatFile, { url: `/files/spz${extname(job.spz)}`, loader: "SPZLoader" });
    if (job.ply) out.ply = await page.evaluate(checkSplatFile, { url: `/files/ply${extname(job.ply)}`, loader: "GaussianSplatPLYLoader" });
    if (job.vrm) out.vrm = await page.evaluate(checkVrm, { url: `/files/vrm${extname(job.vrm)}` });
    out.babylon = [];
    for (const [i, g] of (job.babylon || []).entries()) {
      out.babylon.push(await page.evaluate(checkBabylon, {
        url: `/files/babylon${i}.glb`, shots: g.shots || [], details: Boolean(g.details),
      }));
    }
  }
  if (job.web) out.web = await checkWeb(page, job.web, job.webTimes || []);
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
out.pageErrors = pageErrors;
console.log(JSON.stringify(out));

// ---- in-page functions (serialised by playwright: no closures over this module) ----

async function checkGlb({ url, times, details, shots }) {
  const THREE = await import("three");
  const { GLTFLoader } = await import("three/addons/loaders/GLTFLoader.js");
  const { GLTFGaussianSplatLoaderExtension } = await import("three/addons/loaders/GLTFGaussianSplatLoaderExtension.js");
  const buffer = await (await fetch(url)).arrayBuffer();
  const warnings = [];
  const warn = console.warn;
  console.warn = (...args) => warnings.push(args.join(" "));
  const gltf = await new GLTFLoader().parseAsync(buffer.slice(0), "");
  const splatLoader = new GLTFLoader();
  splatLoader.register((parser) => new GLTFGaussianSplatLoaderExtension(parser));
  const splatGltf = await splatLoader.parseAsync(buffer.slice(0), "");
  console.warn = warn;

  const result = { bones: 0, skinnedMeshes: [], points: [], animations: [], warnings, posed: [] };
  let mesh = null, splats = null;
  gltf.scene.traverse((o) => {
    if (o.isBone) result.bones += 1;
    const morphs = o.morphTargetDictionary ? Object.keys(o.morphTargetDictionary) : [];
    if (o.isSkinnedMesh) {
      mesh = o;
      const map = o.material && o.material.map;
      result.skinnedMeshes.push({
        name: o.name, vertices: o.geometry.attributes.position.count, bones: o.skeleton.bones.length,
        boneNames: o.skeleton.bones.map((b) => b.name), morphTargets: morphs,
        uv: Boolean(o.geometry.attributes.uv),
        texture: map && map.image ? { width: map.image.width, height: map.image.height } : null,
      });
    } else if (o.isPoints) {
      splats = o;
      result.points.push({
        name: o.name, count: o.geometry.attributes.position.count, morphTargets: morphs,
        attributes: Object.keys(o.geometry.attributes),
      });
    }
  });
  for (const clip of gltf.animations) result.animations.push({ name: clip.name, duration: clip.duration, tracks: clip.tracks.length });

  let splat = null;
  splatGltf.scene.traverse((o) => { if (o.isGaussianSplat) splat = o; });
  if (splat) {
    const a = splat.splatGeometry.attributes;
    result.splat = { type: splat.type, count: a.position.count };
    if (details) {
      Object.assign(result.splat, {
        centers: Array.from(a.position.array), covariances: Array.from(a.covariance.array), colors: Array.from(a.color.array),
      });
    }
  }

  // Engine-side posing: three's animation system drives the nodes; the surface is skinned by three itself, the
  // splat centres with the skin's joints (three's own node objects) and inverse bind matrices and the file's
  // per-splat joints and weights (three does not skin points).
  const skinDef = gltf.parser.json.skins[0];
  const bones = await Promise.all(skinDef.joints.map((j) => gltf.parser.getDependency("node", j)));
  const ibm = await gltf.parser.getDependency("accessor", skinDef.inverseBindMatrices);
  const inverses = bones.map((_, j) => new THREE.Matrix4().fromArray(ibm.array, 16 * j));
  const mixer = gltf.animations.length ? new THREE.AnimationMixer(gltf.scene) : null;
  if (mixer) mixer.clipAction(gltf.animations[0]).play();
  for (const t of times) {
    if (mixer) mixer.setTime(t);
    gltf.scene.updateMatrixWorld(true);
    const entry = { time: t, mesh: [], splats: [] };
    const v = new THREE.Vector3();
    if (mesh) {
      for (let i = 0; i < mesh.geometry.attributes.position.count; i++) {
        mesh.getVertexPosition(i, v);
        entry.mesh.push(v.x, v.y, v.z);
      }
    }
    if (splats) {
      const g = splats.geometry, pos = g.attributes.position, idx = g.attributes.skinIndex, wt = g.attributes.skinWeight;
      const targets = g.morphAttributes.position || [], influences = splats.morphTargetInfluences || [];
      const jointMatrices = bones.map((b, j) => new THREE.Matrix4().multiplyMatrices(b.matrixWorld, inverses[j]));
      const p = new THREE.Vector3(), q = new THREE.Vector3(), acc = new THREE.Vector3();
      for (let i = 0; i < pos.count; i++) {
        p.fromBufferAttribute(pos, i);
        for (let e = 0; e < targets.length; e++) {
          if (influences[e]) p.addScaledVector(q.fromBufferAttribute(targets[e], i), influences[e]);
        }
        acc.set(0, 0, 0);
        for (let k = 0; k < 4; k++) {
          const w = wt.getComponent(i, k);
          if (w) acc.addScaledVector(q.copy(p).applyMatrix4(jointMatrices[idx.getComponent(i, k)]), w);
        }
        entry.splats.push(acc.x, acc.y, acc.z);
      }
    }
    result.posed.push(entry);
  }
  // Screenshots of the textured mesh (WebGL, unlit: the texture holds the lit colour) at a pose and a camera:
  // {time, eye, target, fovY, size} -> a PNG data URL, compared with our splat render by the test.
  result.shots = [];
  if (shots.length) {
    const renderer = new THREE.WebGLRenderer({ antialias: false, preserveDrawingBuffer: true });
    renderer.setPixelRatio(1);
    renderer.setClearColor(0x000000, 1);
    gltf.scene.traverse((o) => {
      if (o.isSkinnedMesh) {
        o.material = new THREE.MeshBasicMaterial({ map: o.material.map, side: THREE.FrontSide });
        o.frustumCulled = false;
      }
      if (o.isPoints) o.visible = false;
    });
    for (const shot of shots) {
      renderer.setSize(shot.size, shot.size, false);
      if (mixer) mixer.setTime(shot.time);
      gltf.scene.updateMatrixWorld(true);
      const camera = new THREE.PerspectiveCamera(shot.fovY, 1, 0.01, 100);
      camera.position.set(...shot.eye);
      camera.up.set(0, 1, 0);
      camera.lookAt(...shot.target);
      renderer.render(gltf.scene, camera);
      result.shots.push(renderer.domElement.toDataURL("image/png"));
    }
    renderer.dispose();
  }
  return result;
}

// Babylon.js (@babylonjs/core + @babylonjs/loaders, its glTF loader with all its extensions, KHR_gaussian_splatting
// included) loads a glb into a scene on a WebGL canvas: what it made of it (skinned meshes with their skeleton,
// morph targets and textures, Gaussian-splat meshes with their splat count, animation groups), and screenshots of
// the textured meshes, unlit, at a pose (the glb's first animation group at that time) and a camera (the same
// {time, eye, target, fovY, size} as the three.js shots).
async function checkBabylon({ url, shots, details }) {
  const { Engine } = await import("@babylonjs/core/Engines/engine.js");
  const { Scene } = await import("@babylonjs/core/scene.js");
  const { LoadAssetContainerAsync } = await import("@babylonjs/core/Loading/sceneLoader.js");
  const { FreeCamera } = await import("@babylonjs/core/Cameras/freeCamera.js");
  const { Vector3 } = await import("@babylonjs/core/Maths/math.vector.js");
  const { Color4 } = await import("@babylonjs/core/Maths/math.color.js");
  await import("@babylonjs/loaders/glTF/2.0/index.js");
  const size = shots.length ? shots[0].size : 64;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = size;
  document.body.appendChild(canvas);
  const engine = new Engine(canvas, false, { preserveDrawingBuffer: true, antialias: false }, false);
  engine.setHardwareScalingLevel(1);
  const scene = new Scene(engine);
  scene.useRightHandedSystem = true;  // glTF's frame, so the cameras are the ones three.js and we use
  scene.clearColor = new Color4(0, 0, 0, 1);
  const buffer = new Uint8Array(await (await fetch(url)).arrayBuffer());
  const container = await LoadAssetContainerAsync(buffer, scene, { pluginExtension: ".glb" });
  container.addAllToScene();
  const result = { meshes: [], splats: [], animationGroups: container.animationGroups.map((g) => g.name), shots: [] };
  for (const mesh of container.meshes) {
    if (mesh.getClassName().startsWith("GaussianSplatting")) {
      const entry = { name: mesh.name, className: mesh.getClassName(), count: mesh.splatCount ?? null };
      // The splat centres Babylon sorts and draws (x y z 1 per splat; an internal buffer, read only by this check).
      if (details && mesh._splatPositions) entry.positions = Array.from(mesh._splatPositions);
      result.splats.push(entry);
    } else if (mesh.getTotalVertices() > 0) {
      const manager = mesh.morphTargetManager;
      const texture = mesh.material && mesh.material.albedoTexture;
      result.meshes.push({
        name: mesh.name, vertices: mesh.getTotalVertices(), skeleton: mesh.skeleton ? mesh.skeleton.bones.length : 0,
        boneNames: mesh.skeleton ? mesh.skeleton.bones.map((b) => b.name) : [],
        morphTargets: manager ? Array.from({ length: manager.numTargets }, (_, k) => manager.getTarget(k).name) : [],
        texture: texture ? texture.getSize() : null,
      });
      if (mesh.material) mesh.material.unlit = true;  // the texture holds the lit colour, as in the three.js shots
    }
  }
  const group = container.animationGroups[0];
  for (const shot of shots) {
    if (group) {
      group.start(false, 1.0);
      group.pause();
      const fps = group.targetedAnimations.length ? group.targetedAnimations[0].animation.framePerSecond : 60;
      group.goToFrame(shot.time * fps);
    }
    const camera = new FreeCamera("shot", new Vector3(...shot.eye), scene);
    camera.upVector = new Vector3(0, 1, 0);
    camera.setTarget(new Vector3(...shot.target));
    camera.fov = (shot.fovY * Math.PI) / 180;  // vertical, Babylon's default fovMode
    camera.minZ = 0.01;
    camera.maxZ = 100;
    scene.activeCamera = camera;
    await scene.whenReadyAsync();
    scene.render();
    scene.render();  // the first frame uploads the skeleton and morph textures
    result.shots.push(canvas.toDataURL("image/png"));
    camera.dispose();
  }
  engine.dispose();
  canvas.remove();
  return result;
}

// three-vrm (@pixiv/three-vrm) loads the .vrm: its humanoid, expressions and meta; setting the "aa" expression
// to 1 must move the mesh (read back with morphs and skinning applied, as three draws it).
async function checkVrm({ url }) {
  const THREE = await import("three");
  const { GLTFLoader } = await import("three/addons/loaders/GLTFLoader.js");
  const { VRMLoaderPlugin } = await import("@pixiv/three-vrm");
  const loader = new GLTFLoader();
  loader.register((parser) => new VRMLoaderPlugin(parser));
  const gltf = await loader.parseAsync(await (await fetch(url)).arrayBuffer(), "");
  const vrm = gltf.userData.vrm;
  if (!vrm) return { loaded: false };
  const bones = {};
  for (const name of ["hips", "spine", "head", "leftUpperArm", "leftHand", "rightFoot", "jaw"]) {
    const node = vrm.humanoid.getRawBoneNode(name);
    bones[name] = node ? node.name : null;
  }
  let mesh = null;
  vrm.scene.traverse((o) => { if (o.isSkinnedMesh && o.name === "surface") mesh = o; });
  const read = () => {
    vrm.scene.updateMatrixWorld(true);
    const v = new THREE.Vector3(), out = [];
    for (let i = 0; i < mesh.geometry.attributes.position.count; i++) {
      mesh.getVertexPosition(i, v);
      out.push(v.x, v.y, v.z);
    }
    return out;
  };
  vrm.expressionManager.setValue("aa", 0);
  vrm.update(0);
  const neutral = read();
  vrm.expressionManager.setValue("aa", 1);
  vrm.update(0);
  const influences = Array.from(mesh.morphTargetInfluences);
  const open = read();
  return {
    loaded: true, metaVersion: vrm.meta.metaVersion, name: vrm.meta.name, bones,
    expressions: vrm.expressionManager.expressions.map((e) => e.expressionName),
    influences, neutral, open,
  };
}

async function checkSplatFile({ url, loader }) {
  const module = await import(`three/addons/loaders/${loader}.js`);
  const geometry = await new module[loader]().loadAsync(url);
  const a = geometry.attributes;
  return {
    count: a.position.count, centers: Array.from(a.position.array), covariances: Array.from(a.covariance.array),
    colors: Array.from(a.color.array),
  };
}

async function checkWeb(page, dir, times) {
  const index = join(resolve(dir), "index.html");
  await page.goto(pathToFileURL(index).href + "#t=0.1&hud=0");
  await page.waitForFunction(() => document.title !== "anchorsplat: loading", null, { timeout: 30000 });
  const title = await page.title();
  const pixels = await page.evaluate(() => {
    const canvas = document.getElementById("view");
    const copy = document.createElement("canvas");
    copy.width = canvas.width;
    copy.height = canvas.height;
    const ctx = copy.getContext("2d");
    ctx.drawImage(canvas, 0, 0);
    const data = ctx.getImageData(0, 0, copy.width, copy.height).data;
    const bg = (window.ANCHORSPLAT_AVATAR.background || [0.12, 0.12, 0.14]).map((c) => Math.round(c * 255));
    let differ = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (Math.abs(data[i] - bg[0]) + Math.abs(data[i + 1] - bg[1]) + Math.abs(data[i + 2] - bg[2]) > 12) differ++;
    }
    return { width: copy.width, height: copy.height, nonBackground: differ, corner: Array.from(data.slice(0, 4)) };
  });
  const posed = await page.evaluate((ts) => {
    const P = window.AnchorsplatPose;
    const av = P.loadAvatar(window.ANCHORSPLAT_AVATAR);
    return ts.map((t) => ({ time: t, centers: Array.from(P.poseAt(av, t).posed) }));
  }, times);
  return { title, status: await page.textContent("#status"), ...pixels, posed };
}
