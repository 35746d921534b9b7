/* Upload forms with a progress bar: the file goes up by XMLHttpRequest, which reports how much
 * has been sent (fetch does not); the server's answer is the same redirect the plain form gets,
 * which the page then follows. A 200 MB video shows its progress instead of a frozen page.
 */
document.querySelectorAll("form.upload-form").forEach((form) => {
  const bar = form.querySelector(".upload-progress");
  const status = form.querySelector(".upload-status");
  const button = form.querySelector('button[type="submit"]');
  let lastSaid = -1;

  form.addEventListener("submit", (event) => {
    const file = form.querySelector('input[type="file"]');
    if (!file || file.files.length === 0) return; // the server says what is missing
    event.preventDefault();
    const request = new XMLHttpRequest();
    request.open("POST", form.action);
    request.setRequestHeader("X-Requested-With", "XMLHttpRequest");
    request.responseType = "json";
    request.upload.addEventListener("progress", (progress) => {
      if (!progress.lengthComputable) return;
      const percent = Math.floor((progress.loaded / progress.total) * 100);
      bar.hidden = false;
      bar.value = percent;
      // The status is said at every tenth only, not at every event.
      if (Math.floor(percent / 10) !== Math.floor(lastSaid / 10)) {
        lastSaid = percent;
        status.textContent = form.dataset.msgProgress.replace("__PERCENT__", String(percent));
      }
    });
    request.upload.addEventListener("load", () => {
      status.textContent = form.dataset.msgProcessing;
    });
    request.addEventListener("load", () => {
      const next = request.response && request.response.next;
      if (next) {
        const target = new URL(next, window.location.href);
        if (target.pathname === window.location.pathname) {
          window.location.hash = target.hash; // the same page: only the anchor changes,
          window.location.reload(); // so load it again to show the new file and the message
        } else {
          window.location.assign(target.href);
        }
      } else {
        status.textContent = form.dataset.msgFailed;
        button.disabled = false;
      }
    });
    request.addEventListener("error", () => {
      status.textContent = form.dataset.msgFailed;
      button.disabled = false;
    });
    button.disabled = true;
    request.send(new FormData(form));
  });
});
