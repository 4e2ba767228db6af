// The page that needs no server (`digits.export format=web`): a digit drawn on the canvas is made
// MNIST-like here, as digits.reading.preprocess.drawing does in Python, and classified in this
// browser by ONNX Runtime Web. Only what a drawing needs is ported: a drawing has no paper, light
// or stroke width to correct (photos and numbers: digits.serve).
import * as ort from "./onnxruntime-web/ort.wasm.bundle.min.mjs";
import { clearPad, followStrokes } from "./pad.js";

const FIELD = 28; // the network's input: 28x28, white ink on black, 0-1
const DIGIT_BOX = 20; // MNIST fitted each digit's box into 20x20
const DEBOUNCE_MS = 300;
// Several threads need a cross-origin-isolated page, which a plain static host does not give.
ort.env.wasm.numThreads = 1;

const pad = document.getElementById("pad");
const ink = pad.getContext("2d", { willReadFrequently: true });
let session = null;
let pending = null;

// Python's round(): halves to the even neighbour, as box_and_centre rounds.
function roundHalfEven(x) {
  const down = Math.floor(x);
  const rest = x - down;
  if (rest !== 0.5) return Math.round(x);
  return down % 2 === 0 ? down : down + 1;
}

// torch's interpolate(mode="area") (adaptive average pooling): each output pixel averages the
// input pixels its span overlaps.
function area(image, height, width, rows, cols) {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const [top, bottom] = [Math.floor(r * height / rows), Math.ceil((r + 1) * height / rows)];
    for (let c = 0; c < cols; c++) {
      const [left, right] = [Math.floor(c * width / cols), Math.ceil((c + 1) * width / cols)];
      let sum = 0;
      for (let y = top; y < bottom; y++) {
        for (let x = left; x < right; x++) sum += image[y * width + x];
      }
      out[r * cols + c] = sum / ((bottom - top) * (right - left));
    }
  }
  return out;
}

// torch's interpolate(mode="bilinear", align_corners=False), for a digit smaller than 20 px.
function bilinear(image, height, width, rows, cols) {
  const source = (i, inSize, outSize) => {
    const at = Math.max((i + 0.5) * inSize / outSize - 0.5, 0);
    const low = Math.floor(at);
    return [low, Math.min(low + 1, inSize - 1), at - low];
  };
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const [y0, y1, dy] = source(r, height, rows);
    for (let c = 0; c < cols; c++) {
      const [x0, x1, dx] = source(c, width, cols);
      const top = image[y0 * width + x0] * (1 - dx) + image[y0 * width + x1] * dx;
      const bottom = image[y1 * width + x0] * (1 - dx) + image[y1 * width + x1] * dx;
      out[r * cols + c] = top * (1 - dy) + bottom * dy;
    }
  }
  return out;
}

// A drawing (dark ink on white) as the network's input, or null when blank: ink cropped to its
// box and scaled to 0-1, fitted into 20x20 (aspect kept), centred by its centre of mass in 28x28.
function preprocess({ width, height, data }) {
  let [top, bottom, left, right, darkest] = [height, -1, width, -1, 0];
  const gray = new Float64Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const value = 255 - data[4 * (y * width + x)]; // a gray canvas: red is the gray
      gray[y * width + x] = value;
      if (value > 0) {
        [top, bottom] = [Math.min(top, y), Math.max(bottom, y)];
        [left, right] = [Math.min(left, x), Math.max(right, x)];
        darkest = Math.max(darkest, value);
      }
    }
  }
  if (bottom < 0) return null;
  const [h, w] = [bottom - top + 1, right - left + 1];
  const crop = new Float64Array(h * w);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) crop[y * w + x] = gray[(top + y) * width + left + x] / darkest;
  }
  const scale = DIGIT_BOX / Math.max(h, w);
  const [rows, cols] = [Math.max(1, roundHalfEven(h * scale)), Math.max(1, roundHalfEven(w * scale))];
  const digit = (scale < 1 ? area : bilinear)(crop, h, w, rows, cols);
  let [mass, rowMass, colMass] = [0, 0, 0];
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      const value = digit[y * cols + x];
      [mass, rowMass, colMass] = [mass + value, rowMass + value * y, colMass + value * x];
    }
  }
  const place = (centre, size) =>
    Math.min(Math.max(roundHalfEven(FIELD / 2 - 0.5 - centre), 0), FIELD - size);
  const [y0, x0] = [place(rowMass / mass, rows), place(colMass / mass, cols)];
  const input = new Float32Array(FIELD * FIELD);
  for (let y = 0; y < rows; y++) {
    for (let x = 0; x < cols; x++) {
      input[(y0 + y) * FIELD + x0 + x] = Math.min(Math.max(digit[y * cols + x], 0), 1);
    }
  }
  return input;
}

async function classify(input) {
  const images = new ort.Tensor("float32", input, [1, 1, FIELD, FIELD]);
  const outputs = await session.run({ [session.inputNames[0]]: images });
  return Array.from(outputs[session.outputNames[0]].data); // the model ends in its softmax
}

// The page's one path from the canvas to an answer; the browser test feeds images through it.
async function readPad() {
  const input = preprocess(ink.getImageData(0, 0, pad.width, pad.height));
  if (input === null) {
    show(null);
    return null;
  }
  const probabilities = await classify(input);
  show(input, probabilities);
  return { input: Array.from(input), probabilities };
}
window.digitsPage = { readPad };

function seenImage(input) {
  const canvas = Object.assign(document.createElement("canvas"), { width: FIELD, height: FIELD });
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(FIELD, FIELD);
  input.forEach((value, i) => {
    pixels.data.fill(Math.round(value * 255), 4 * i, 4 * i + 3);
    pixels.data[4 * i + 3] = 255;
  });
  context.putImageData(pixels, 0, 0);
  return canvas.toDataURL();
}

function show(input, probabilities = []) {
  const best = probabilities.indexOf(Math.max(...probabilities));
  document.getElementById("digit").textContent = input ? String(best) : "?";
  document.getElementById("confidence").textContent = input
    ? `${(probabilities[best] * 100).toFixed(1)}% sure`
    : session ? "draw to start" : "loading the model…";
  document.querySelector("figure").hidden = !input;
  if (input) document.getElementById("seen").src = seenImage(input);
  document.getElementById("bars").replaceChildren(...probabilities.map((p, digit) => {
    const row = document.createElement("li");
    row.className = digit === best ? "top" : "";
    const percent = `${(p * 100).toFixed(1)}%`;
    row.innerHTML = `<span>${digit}</span><span class="bar" style="width:${percent}"></span>` +
      `<span>${percent}</span>`;
    return row;
  }));
}

followStrokes(pad, ink, {
  start() {
    clearTimeout(pending);
  },
  end() {
    // Strokes made while the model loads are kept, and read once it has loaded.
    if (session) pending = setTimeout(readPad, DEBOUNCE_MS);
  },
});
document.getElementById("clear").addEventListener("click", () => {
  clearTimeout(pending);
  clearPad(pad, ink);
  show(null);
});

function describe(info) {
  const accuracy = info.test_accuracy ? `, ${(info.test_accuracy * 100).toFixed(2)}% on MNIST's test set` : "";
  const commit = info.commit ? `, commit ${info.commit.slice(0, 12)}` : "";
  document.getElementById("model").textContent =
    `Model: ${info.model}${accuracy} (digits ${info.digits_version}${commit}).`;
}

clearPad(pad, ink);
try {
  const [info, loaded] = await Promise.all([
    fetch("model.json").then((answer) => answer.json()),
    ort.InferenceSession.create("model.onnx"),
  ]);
  session = loaded;
  describe(info);
  document.body.dataset.state = "ready";
  await readPad(); // what was drawn while it loaded, if anything

} catch (error) {
  document.getElementById("error").textContent = `The model did not load: ${error.message}`;
  document.body.dataset.state = "failed";
}
