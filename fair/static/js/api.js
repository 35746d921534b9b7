/* Calling the fair's API from a page: the session cookie, the page's CSRF token on unsafe
 * methods, and an Idempotency-Key where a retry must not act twice (signing, paying).
 */

/** A fresh Idempotency-Key: a random UUID (version 4), the one format every page sends. */
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context (HTTPS or localhost); getRandomValues does not.
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
  return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)]
    .join("-");
}

/** The CSRF token base.html puts in its meta tag; pages without it make only safe calls. */
export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

/**
 * Call the API; resolves to {ok, status, data} whatever the status (data is {} when the answer
 * is not JSON) and rejects only when no answer came, with fetch's TypeError.
 */
export async function callApi(method, url, { body, key } = {}) {
  const headers = { Accept: "application/json" };
  if (method !== "GET" && method !== "HEAD") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (key) headers["Idempotency-Key"] = key;
  const response = await fetch(url, {
    method,
    headers,
    credentials: "same-origin",
    cache: "no-store",
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => ({}));
  return { ok: response.ok, status: response.status, data };
}

/** The message to show for a refusal: the first field's, else the error's own. */
export function errorMessage(data) {
  const error = data && data.error;
  if (!error) return null;
  for (const messages of Object.values(error.fields || {})) {
    if (Array.isArray(messages) && messages.length) return String(messages[0]);
  }
  return error.message || null;
}
