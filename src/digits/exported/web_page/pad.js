// Writing on a canvas with a mouse, a pen or a finger: black ink on white, about MNIST's stroke
// once a digit is scaled to 20 px. Shared by the server's page and the page that needs no server.

export function clearPad(pad, ink) {
  ink.fillStyle = "#fff";
  ink.fillRect(0, 0, pad.width, pad.height);
  ink.strokeStyle = "#000";
  ink.lineWidth = pad.height / 14;
  ink.lineCap = ink.lineJoin = "round";
}

// Draw each stroke as it is written; `start()` (false: ignore this stroke) and `end()` are called
// as a stroke begins and ends.
export function followStrokes(pad, ink, { start, end }) {
  let drawing = false;
  const point = (event) => {
    const box = pad.getBoundingClientRect();
    return [(event.clientX - box.left) * pad.width / box.width,
            (event.clientY - box.top) * pad.height / box.height];
  };
  pad.addEventListener("pointerdown", (event) => {
    if (start() === false) return;
    drawing = true;
    pad.setPointerCapture(event.pointerId);
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
  for (const stop of ["pointerup", "pointercancel"]) {
    pad.addEventListener(stop, () => {
      if (!drawing) return;
      drawing = false;
      end();
    });
  }
}
