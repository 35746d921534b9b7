/* The small behaviours of server-rendered pages, from a file because the Content-Security-Policy
 * runs no inline script. Each one looks for its markup and does nothing on pages without it.
 */

// Forms that ask first: <form data-confirm="question">.
document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});

// A project's gallery: thumbnails swap the large image; without script they open the image.
document.querySelectorAll(".gallery-thumbs a").forEach((link) => {
  link.addEventListener("click", (event) => {
    const image = document.getElementById("gallery-image");
    if (!image) return;
    event.preventDefault();
    image.src = link.dataset.full;
    document.querySelectorAll(".gallery-thumbs a").forEach((other) => {
      other.removeAttribute("aria-current");
    });
    link.setAttribute("aria-current", "true");
  });
});

// Downloads that take a while (an organiser's Excel is built on request, for seconds):
// <a data-progress="ID"> fetches the file and shows the progress box ID while the server builds
// it (an indeterminate bar) and while it arrives (bytes against Content-Length), then saves it
// under the server's file name. Without script the link downloads as before.
function downloadName(disposition) {
  const encoded = /filename\*=UTF-8''([^;]+)/i.exec(disposition || "");
  if (encoded) return decodeURIComponent(encoded[1]);
  const plain = /filename="?([^";]+)"?/i.exec(disposition || "");
  return plain ? plain[1] : "";
}

document.querySelectorAll("a[data-progress]").forEach((link) => {
  const box = document.getElementById(link.dataset.progress);
  if (!box || !window.fetch) return;
  const bar = box.querySelector("progress");
  const label = box.querySelector(".download-label");
  link.addEventListener("click", async (event) => {
    event.preventDefault();
    if (link.getAttribute("aria-disabled") === "true") return;
    link.setAttribute("aria-disabled", "true");
    box.hidden = false;
    bar.removeAttribute("value");
    label.textContent = box.dataset.preparing;
    try {
      const response = await fetch(link.href, { credentials: "same-origin" });
      if (!response.ok) throw new Error(String(response.status));
      const total = Number(response.headers.get("Content-Length")) || 0;
      label.textContent = box.dataset.receiving;
      const reader = response.body.getReader();
      const chunks = [];
      let received = 0;
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        received += value.length;
        if (total) {
          bar.max = total;
          bar.value = received;
        }
      }
      const file = new Blob(chunks, { type: response.headers.get("Content-Type") || "" });
      const save = document.createElement("a");
      save.href = URL.createObjectURL(file);
      save.download = downloadName(response.headers.get("Content-Disposition"));
      document.body.append(save);
      save.click();
      save.remove();
      setTimeout(() => URL.revokeObjectURL(save.href), 60_000);
      bar.max = 1;
      bar.value = 1;
      label.textContent = box.dataset.done;
    } catch {
      bar.value = 0;
      label.textContent = box.dataset.failed;
    } finally {
      link.removeAttribute("aria-disabled");
    }
  });
});
