// The page: draw on the canvas (mouse, pen or touch) or pick a photo; each is sent to POST /predict
// and the answer shown. All preprocessing happens on the server, the same as `digits.predict`.
"use strict";

const pad = document.getElementById("pad");
const ink = pad.getContext("2d");
const photo = document.getElementById("photo");
const DEBOUNCE_MS = 150;
let drawing = false;
let pending = null;

function clearPad() {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  ink.strokeStyle = "#000";
  ink.lineWidth = pad.width / 14; // about MNIST's stroke once the digit is scaled to 20 px
  ink.lineCap = ink.lineJoin = "round";
}

function point(event) {
  const box = pad.getBoundingClientRect();
  return [(event.clientX - box.left) * pad.width / box.width,
          (event.clientY - box.top) * pad.height / box.height];
}

pad.addEventListener("pointerdown", (event) => {
  drawing = true;
  pad.setPointerCapture(event.pointerId);
  clearTimeout(pending);
  ink.beginPath();
  ink.moveTo(...point(event));
  ink.lineTo(...point(event));
  ink.stroke();
});
pad.addEventListener("pointermove", (event) => {
  if (!drawing) return;
  ink.lineTo(...point(event));
  ink.stroke();
});
for (const end of ["pointerup", "pointercancel"]) {
  pad.addEventListener(end, () => {
    if (!drawing) return;
    drawing = false;
    clearTimeout(pending);
    pending = setTimeout(() => pad.toBlob((blob) => send(blob, "drawing.png")), DEBOUNCE_MS);
  });
}

document.getElementById("clear").addEventListener("click", () => {
  clearTimeout(pending);
  clearPad();
  show(null);
});

photo.addEventListener("change", async () => {
  const file = photo.files[0];
  photo.value = "";
  if (!file) return;
  clearTimeout(pending);
  clearPad();
  try { // show the photo in the square, fitted; the server gets the original file
    const picture = await createImageBitmap(file);
    const scale = Math.min(pad.width / picture.width, pad.height / picture.height);
    const [w, h] = [picture.width * scale, picture.height * scale];
    ink.drawImage(picture, (pad.width - w) / 2, (pad.height - h) / 2, w, h);
  } catch {
    // not an image the browser can show: the server's answer says what it is
  }
  send(file, file.name);
});

async function send(blob, name) {
  const form = new FormData();
  form.append("image", blob, name);
  try {
    const response = await fetch("/predict?top_k=10&image=true", { method: "POST", body: form });
    const answer = await response.json();
    if (!response.ok) throw new Error(answer.error || response.statusText);
    show(answer);
  } catch (error) {
    show(null, error.message);
  }
}

function show(answer, error = "") {
  document.getElementById("error").textContent = error;
  const digit = document.getElementById("digit");
  const confidence = document.getElementById("confidence");
  const seen = document.getElementById("seen");
  const bars = document.getElementById("bars");
  bars.replaceChildren();
  seen.removeAttribute("src");
  seen.parentElement.hidden = !answer || answer.blank;
  if (!answer || answer.blank) {
    digit.textContent = "?";
    confidence.textContent = answer ? "no ink found" : error ? "" : "draw to start";
    return;
  }
  const sure = `${(answer.confidence * 100).toFixed(1)}% sure`;
  digit.textContent = answer.unsure ? "?" : answer.digit;
  confidence.textContent = answer.unsure ? `unsure: ${answer.top[0].digit} or ${answer.top[1].digit}` : sure;
  seen.src = answer.image;
  const probability = new Map(answer.top.map((t) => [t.digit, t.probability]));
  for (let d = 0; d < 10; d++) {
    const p = probability.get(d) ?? 0;
    const row = document.createElement("li");
    row.className = d === answer.top[0].digit ? "top" : "";
    row.innerHTML = `<span>${d}</span><span class="bar" style="width:${(p * 100).toFixed(1)}%"></span>` +
      `<span>${(p * 100).toFixed(1)}%</span>`;
    bars.append(row);
  }
}

clearPad();
