// The page: write on the canvas (mouse, pen or touch) or pick a photo; each is sent to POST /predict
// and the answer shown: one digit with its probabilities, or a number with each digit's box, reading
// and confidence drawn over what was sent. All preprocessing happens on the server, the same as
// `digits.predict`.
import { clearPad, followStrokes } from "./pad.js";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const boxes = document.getElementById("boxes").getContext("2d");
const photo = document.getElementById("photo");
const copy = document.getElementById("copy");
const DEBOUNCE_MS = 600; // long enough to lift the pen between the digits of a number
// Below this confidence a digit is "unsure": the server answers no digit and its top two, and the
// page marks it. 0.6 unless the page's address says (/?min_confidence=0.9: a number from 0 to 1; any
// other value falls back to 0.6, with a note); the API's own default is never unsure.
const UNSURE_BELOW = unsureBelow(new URLSearchParams(location.search).get("min_confidence"));
let pending = null;
let lastSent = null; // [blob, name]: what the current answer is about
let asked = 0; // requests sent: an answer to an older one than the last is stale
// Where the image sent lies on the canvas: its pixel (x, y) is at (left + x * scale, top + y * scale).
let placed = { left: 0, top: 0, scale: 1 };

function unsureBelow(asked) {
  const value = asked === null ? NaN : Number(asked.trim());
  if (asked === null || (asked.trim() !== "" && value >= 0 && value <= 1)) return asked ?? "0.6";
  document.getElementById("note").textContent =
    `?min_confidence=${asked} is not a number from 0 to 1 (e.g. 0.9): using 0.6.`;
  return "0.6";
}

function clearPage() {
  clearPad(pad, ink);
  boxes.clearRect(0, 0, pad.width, pad.height);
  placed = { left: 0, top: 0, scale: 1 };
}

function mode() {
  return document.querySelector("input[name=mode]:checked").value;
}

followStrokes(pad, ink, {
  start() {
    if (lastSent && lastSent[1] !== "drawing.png") clearPage(); // writing over a photo starts afresh
    asked++; // the drawing changes: an answer still on its way is about the old one
    document.body.dataset.state = "writing";
    clearTimeout(pending);
    boxes.clearRect(0, 0, pad.width, pad.height);
  },
  end() {
    clearTimeout(pending);
    pending = setTimeout(() => pad.toBlob((blob) => send(blob, "drawing.png")), DEBOUNCE_MS);
  },
});

document.getElementById("clear").addEventListener("click", () => {
  clearTimeout(pending);
  clearPage();
  lastSent = null;
  asked++;
  show(null);
});

document.getElementById("mode").addEventListener("change", () => {
  if (lastSent) send(...lastSent); // read the same image again the new way
});

copy.addEventListener("click", async () => {
  const text = document.getElementById("digit").textContent;
  try {
    await navigator.clipboard.writeText(text);
  } catch { // no clipboard API (a page over plain http on another machine): the old way
    const field = Object.assign(document.createElement("textarea"), { value: text });
    document.body.append(field);
    field.select();
    document.execCommand("copy");
    field.remove();
  }
  copy.textContent = "Copied";
  setTimeout(() => { copy.textContent = "Copy"; }, 1500);
});

photo.addEventListener("change", async () => {
  const file = photo.files[0];
  photo.value = "";
  if (!file) return;
  clearTimeout(pending);
  clearPage();
  try { // show the photo on the canvas, fitted; the server gets the original file
    const picture = await createImageBitmap(file);
    const scale = Math.min(pad.width / picture.width, pad.height / picture.height);
    const [w, h] = [picture.width * scale, picture.height * scale];
    placed = { left: (pad.width - w) / 2, top: (pad.height - h) / 2, scale };
    ink.drawImage(picture, placed.left, placed.top, w, h);
  } catch {
    // not an image the browser can show: the server's answer says what it is
  }
  send(file, file.name);
});

async function send(blob, name) {
  lastSent = [blob, name];
  const request = ++asked;
  document.body.dataset.state = "reading";
  const form = new FormData();
  form.append("image", blob, name);
  const query = `top_k=10&image=true&mode=${mode()}&min_confidence=${UNSURE_BELOW}`;
  try {
    const response = await fetch(`predict?${query}`, { method: "POST", body: form });
    const answer = await response.json();
    if (request !== asked) return;
    if (!response.ok) throw new Error(answer.error || response.statusText);
    show(answer);
  } catch (error) {
    if (request === asked) show(null, error.message);
  }
  if (request === asked) document.body.dataset.state = "read";
}

function percent(p) {
  return `${(p * 100).toFixed(1)}%`;
}

function reading(d) { // a digit of a number: what it reads as, or "?" with its likeliest (two, or
  // one from a number reader, which scores each digit at its frame only)
  if (!d.unsure) return `${d.digit}`;
  return `? (${d.top.map((t) => t.digit).slice(0, 2).join(" or ")})`;
}

function show(answer, error = "") {
  document.getElementById("error").textContent = error;
  const digit = document.getElementById("digit");
  const confidence = document.getElementById("confidence");
  const seen = document.getElementById("seen");
  const bars = document.getElementById("bars");
  const readings = document.getElementById("readings");
  bars.replaceChildren();
  readings.replaceChildren();
  boxes.clearRect(0, 0, pad.width, pad.height);
  seen.removeAttribute("src");
  seen.parentElement.hidden = !answer || answer.blank || !answer.image;
  readings.hidden = !answer || !answer.digits;
  const found = answer && !answer.blank && (answer.digits ? answer.digits.length : true);
  copy.hidden = !found;
  if (!found) {
    digit.textContent = "?";
    // ink, but no digit read in it: a number reader can read a row as nothing
    confidence.textContent = answer ? (answer.blank ? "no ink found" : "no digit read")
      : error ? "" : "draw to start";
    return;
  }
  if (answer.digits) showNumber(answer, digit, confidence, readings);
  else showDigit(answer, digit, confidence, seen, bars);
}

function showDigit(answer, digit, confidence, seen, bars) {
  digit.textContent = answer.unsure ? "?" : answer.digit;
  confidence.textContent = answer.unsure
    ? `unsure: ${answer.top[0].digit} or ${answer.top[1].digit}` : `${percent(answer.confidence)} sure`;
  seen.src = answer.image;
  const probability = new Map(answer.top.map((t) => [t.digit, t.probability]));
  for (let d = 0; d < 10; d++) {
    const p = probability.get(d) ?? 0;
    const row = document.createElement("li");
    row.className = d === answer.top[0].digit ? "top" : "";
    row.innerHTML = `<span>${d}</span><span class="bar" style="width:${(p * 100).toFixed(1)}%"></span>` +
      `<span>${percent(p)}</span>`;
    bars.append(row);
  }
}

function showNumber(answer, digit, confidence, readings) {
  digit.textContent = answer.text;
  const unsure = answer.digits.filter((d) => d.unsure).length;
  confidence.textContent = `${answer.digits.length} digits` +
    (unsure ? `, ${unsure} unsure (marked ?)` : "");
  for (const d of answer.digits) {
    const item = document.createElement("li");
    item.className = d.unsure ? "unsure" : "";
    item.textContent = `${reading(d)} · ${percent(d.confidence)}`;
    readings.append(item);
    drawBox(d);
  }
}

function drawBox(d) { // the digit's box over the canvas, with its reading and confidence
  const { left, top, scale } = placed;
  const [x, y] = [left + d.box.left * scale, top + d.box.top * scale];
  const [w, h] = [(d.box.right - d.box.left) * scale, (d.box.bottom - d.box.top) * scale];
  const colour = d.unsure ? "#d9822b" : "#1a9c5b";
  boxes.lineWidth = 2;
  boxes.strokeStyle = boxes.fillStyle = colour;
  boxes.setLineDash(d.unsure ? [6, 4] : []);
  boxes.strokeRect(x, y, w, h);
  const label = `${d.unsure ? "?" : d.digit} ${Math.round(d.confidence * 100)}%`;
  boxes.font = "bold 14px system-ui, sans-serif";
  const above = y >= 18;
  boxes.fillRect(x - 1, above ? y - 18 : y + h, boxes.measureText(label).width + 8, 18);
  boxes.fillStyle = "#fff";
  boxes.fillText(label, x + 3, above ? y - 4 : y + h + 14);
}

// A number reader (GET /model: reads "numbers") reads rows whole and answers mode=number only: the
// page reads numbers, and says so. /model answers 503 while the model loads: asked again shortly.
async function readsNumbers(tries = 60) {
  const response = await fetch("model").catch(() => null);
  if (response?.status === 503 && tries > 1) {
    setTimeout(() => readsNumbers(tries - 1), 1000);
    return;
  }
  if (!response?.ok || (await response.json()).reads !== "numbers") return;
  for (const choice of document.querySelectorAll("input[name=mode]")) {
    choice.checked = choice.value === "number";
    choice.disabled = choice.value !== "number";
  }
  document.getElementById("mode").title = "this server's model reads whole numbers only";
  document.querySelector(".hint").textContent =
    "Write a number in the box, or take a photo of one: each row is read whole.";
}

clearPage();
readsNumbers();
