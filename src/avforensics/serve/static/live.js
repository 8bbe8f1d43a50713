// Live page: MediaRecorder (webcam + microphone, WebM) -> WebSocket /api/v1/live/MODEL -> events drawn.
"use strict";

(function () {
  const start = document.getElementById("live-start");
  if (!start) return;
  const stop = document.getElementById("live-stop");
  const canvas = document.getElementById("live-timeline");
  const points = [];
  let socket = null, recorder = null, stream = null;

  function draw() {
    const context = canvas.getContext("2d");
    context.clearRect(0, 0, canvas.width, canvas.height);
    const end = points.length ? points[points.length - 1].t : 1;
    const x = (t) => (t / Math.max(end, 10)) * canvas.width;
    const y = (p) => canvas.height - p * canvas.height;
    context.strokeStyle = "#bbb";
    context.beginPath(); context.moveTo(0, y(0.5)); context.lineTo(canvas.width, y(0.5)); context.stroke();
    for (const point of points) {
      context.fillStyle = point.state === "ALERT" ? "#c0392b" : point.state === "SUSPICIOUS" ? "#e67e22" : "#27ae60";
      context.fillRect(x(point.t) - 2, y(point.p) - 2, 4, 4);
    }
    context.strokeStyle = "#333";
    context.beginPath();
    points.forEach((point, index) => index ? context.lineTo(x(point.t), y(point.smoothed))
                                            : context.moveTo(x(point.t), y(point.smoothed)));
    context.stroke();
  }

  function show(event) {
    const log = document.getElementById("live-log");
    if (event.type === "window") {
      points.push({t: event.end, p: event.p_fake, smoothed: event.smoothed, state: event.state});
      document.getElementById("live-state").textContent = event.state;
      document.getElementById("live-count").textContent = points.length;
      document.getElementById("live-latency").textContent = event.latency_s.toFixed(2) + " s";
      draw();
    } else if (event.type === "skipped") {
      const skipped = document.getElementById("live-skipped");
      skipped.textContent = Number(skipped.textContent) + event.count;
    } else {
      log.textContent += JSON.stringify(event) + "\n";
    }
  }

  async function begin() {
    stream = await navigator.mediaDevices.getUserMedia({video: true, audio: true});
    const preview = document.getElementById("live-preview");
    preview.srcObject = stream;
    preview.play();
    const model = encodeURIComponent(document.getElementById("live-model").value).replace(/%2F/g, "/");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/live/${model}`);
    socket.binaryType = "arraybuffer";
    socket.onmessage = (message) => show(JSON.parse(message.data));
    socket.onclose = (close) => { if (close.reason) show({type: "closed", reason: close.reason}); finish(); };
    socket.onopen = () => {
      recorder = new MediaRecorder(stream, {mimeType: "video/webm"});
      recorder.ondataavailable = (chunk) => {
        if (chunk.data.size && socket.readyState === WebSocket.OPEN) socket.send(chunk.data);
      };
      recorder.start(250);
    };
    start.disabled = true;
    stop.disabled = false;
  }

  function finish() {
    if (recorder && recorder.state !== "inactive") recorder.stop();
    if (stream) stream.getTracks().forEach((track) => track.stop());
    start.disabled = false;
    stop.disabled = true;
  }

  start.addEventListener("click", () => begin().catch((error) => show({type: "error", reason: String(error)})));
  stop.addEventListener("click", () => {
    if (recorder && recorder.state !== "inactive") recorder.stop();
    setTimeout(() => { if (socket && socket.readyState === WebSocket.OPEN) socket.send("end"); }, 300);
  });
})();
