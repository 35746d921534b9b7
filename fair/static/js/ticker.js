/* The ticker of the newest intents, shared by the big screen and the hall page.
 *
 * Intents may arrive in any order and in any number (a burst, a reconnect's snapshot, the same
 * one twice); the ticker shows the newest `capacity` of them, newest on top, each once. Nothing
 * it keeps grows with the intents signed so far: at most `capacity` rows, and at most twice
 * that many waiting for the next frame. `add` and `secure` only note what came; `draw`, called
 * in an animation frame, changes the list's DOM.
 */

export class Ticker {
  /**
   * @param {HTMLElement} list the <ol> to fill
   * @param {{capacity: number, row: (deal: object) => HTMLElement,
   *          markSecured: (element: HTMLElement) => void}} options `row` builds an intent's
   *   row (marked when `deal.secured`); `markSecured` marks a row already shown.
   */
  constructor(list, { capacity, row, markSecured }) {
    this.list = list;
    this.capacity = capacity;
    this.row = row;
    this.markSecured = markSecured;
    this.shown = []; // [{deal, element}], newest first, as the list's children
    this.byId = new Map();
    this.waiting = new Map();
    this.securing = new Set();
  }

  get size() {
    return this.shown.length;
  }

  /** New intents, in any order. */
  add(deals) {
    for (const deal of deals) {
      if (this.byId.has(deal.id)) {
        if (deal.secured) this.securing.add(deal.id);
      } else {
        this.waiting.set(deal.id, deal);
      }
    }
    if (this.waiting.size > 2 * this.capacity) {
      const newest = [...this.waiting.values()].sort(newestFirst).slice(0, this.capacity);
      this.waiting = new Map(newest.map((deal) => [deal.id, deal]));
    }
  }

  /** Intents whose deposit was paid; those not on the ticker are not its business. */
  secure(dealIds) {
    for (const id of dealIds) {
      const waiting = this.waiting.get(id);
      if (waiting) this.waiting.set(id, { ...waiting, secured: true });
      else if (this.byId.has(id)) this.securing.add(id);
    }
  }

  /** Change the list to what came since the last frame. */
  draw() {
    if (this.waiting.size) this.drawNew();
    for (const id of this.securing) {
      const entry = this.byId.get(id);
      if (entry && !entry.deal.secured) {
        entry.deal = { ...entry.deal, secured: true };
        this.markSecured(entry.element);
      }
    }
    this.securing.clear();
  }

  drawNew() {
    const merged = this.shown
      .concat([...this.waiting.values()].map((deal) => ({ deal, element: null })))
      .sort((left, right) => newestFirst(left.deal, right.deal))
      .slice(0, this.capacity);
    this.waiting.clear();
    const kept = new Set(merged);
    for (const entry of this.shown) {
      if (!kept.has(entry)) {
        entry.element.remove();
        this.byId.delete(entry.deal.id);
      }
    }
    // Rows already shown keep their order, so each new row goes in before the first older one.
    let cursor = this.list.firstElementChild;
    for (const entry of merged) {
      if (entry.element) {
        cursor = entry.element.nextElementSibling;
      } else {
        entry.element = this.row(entry.deal);
        this.byId.set(entry.deal.id, entry);
        this.list.insertBefore(entry.element, cursor);
      }
    }
    this.shown = merged;
  }
}

function newestFirst(left, right) {
  return right.id - left.id;
}
