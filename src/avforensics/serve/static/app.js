// The page's behaviour: upload with drag and drop, progress while a job runs, delete. Plain JavaScript.
"use strict";

function setUpUpload() {
  const form = document.getElementById("upload-form");
  if (!form) return;
  const drop = document.getElementById("drop");
  const input = document.getElementById("file");
  const submit = document.getElementById("submit");
  let chosen = null;

  function choose(file) {
    chosen = file;
    document.getElementById("chosen").textContent = file ? `${file.name} (${(file.size / 1048576).toFixed(1)} MB)` : "";
    submit.disabled = !file;
  }
  input.addEventListener("change", () => choose(input.files[0] || null));
  for (const name of ["dragenter", "dragover"]) {
    drop.addEventListener(name, (event) => { event.preventDefault(); drop.classList.add("over"); });
  }
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files.length) choose(event.dataTransfer.files[0]);
  });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (!chosen) return;
    const error = document.getElementById("upload-error");
    const models = form.querySelectorAll("input[name=models]:checked");
    if (!models.length) { error.textContent = "choose at least one detector"; error.hidden = false; return; }
    const body = new FormData();
    for (const box of models) body.append("models", box.value);
    const periods = document.getElementById("fake-periods").value.trim();
    if (periods) body.append("fake_periods", periods);
    body.append("file", chosen, chosen.name);  // last: the fields arrive before the large part
    const bar = document.getElementById("upload-progress");
    const request = new XMLHttpRequest();
    request.open("POST", "/api/v1/jobs");
    request.upload.addEventListener("progress", (e) => { if (e.lengthComputable) bar.value = e.loaded / e.total; });
    request.addEventListener("load", () => {
      let answer = {};
      try { answer = JSON.parse(request.responseText); } catch (_) { /* not JSON: shown below */ }
      if (request.status === 201) { window.location = answer.links.page; return; }
      error.textContent = `${request.status}: ${answer.detail || request.statusText}`;
      error.hidden = false;
      submit.disabled = false;
    });
    request.addEventListener("error", () => { error.textContent = "the upload failed"; error.hidden = false; });
    submit.disabled = true;
    error.hidden = true;
    bar.hidden = false;
    request.send(body);
  });
}

function followJob() {
  const pending = document.getElementById("pending");
  if (!pending) return;
  const id = pending.dataset.job;
  async function poll() {
    const response = await fetch(`/api/v1/jobs/${id}`);
    if (response.ok) {
      const job = await response.json();
      document.getElementById("state").textContent = job.state;
      document.getElementById("stage").textContent = job.stage;
      document.getElementById("progress").value = job.progress;
      if (job.state === "done" || job.state === "failed") { window.location.reload(); return; }
    }
    setTimeout(poll, 1000);
  }
  setTimeout(poll, 500);
}

function setUpDelete() {
  for (const button of document.querySelectorAll("button.delete")) {
    button.addEventListener("click", async () => {
      if (!window.confirm("Delete this job, its report and its files?")) return;
      const response = await fetch(`/api/v1/jobs/${button.dataset.job}`, { method: "DELETE" });
      if (response.status !== 204) { window.alert(`delete failed: ${response.status}`); return; }
      if (button.dataset.then) { window.location = button.dataset.then; return; }
      document.getElementById(`job-${button.dataset.job}`).remove();
    });
  }
}

document.addEventListener("DOMContentLoaded", () => { setUpUpload(); followJob(); setUpDelete(); });
