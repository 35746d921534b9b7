/* Drawing at most once per animation frame, however many messages arrive in between: a message
 * only changes a page's state and asks for a frame; the frame draws what changed.
 */

/** A function that asks for one call of `draw` in the next animation frame. */
export function frameScheduler(draw) {
  let requested = false;
  return function requestDraw() {
    if (requested) return;
    requested = true;
    requestAnimationFrame(() => {
      requested = false;
      draw();
    });
  };
}
