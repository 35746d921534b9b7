/* On a phone the catalogue's facets start folded so that the results come first. This runs in
 * the head: the class hides the facets' lists before the first frame (fair.css), then the
 * <details> are closed for real and the class goes, leaving them to open on a tap. Without
 * script the facets simply stay open.
 */
if (window.matchMedia("(max-width: 820px)").matches) {
  document.documentElement.classList.add("fold-facets");
  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll(".facets details").forEach((details) => { details.open = false; });
    document.documentElement.classList.remove("fold-facets");
  });
}
