/* Drawing at most once per animation frame, however many messages arrive in between: a message
 * only changes a page's state and asks for a frame; the frame draws what changed.
 */

/**
 * A function that asks for one call of `draw` in an animation frame, at most one frame every
 * `interval` ms: each frame costs the browser's own style, layout and paint work whatever
 * changed, which at a message a frame kept a slow machine's main thread busy.
 */
export function frameScheduler(draw, { interval = 0 } = {}) {
  let requested = false;
  let drawnAt = -Infinity;
  function frame() {
    requested = false;
    drawnAt = performance.now();
    draw();
  }
  return function requestDraw() {
    if (requested) return;
    requested = true;
    const wait = drawnAt + interval - performance.now();
    if (wait > 0) window.setTimeout(() => requestAnimationFrame(frame), wait);
    else requestAnimationFrame(frame);
  };
}
