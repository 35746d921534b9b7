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
