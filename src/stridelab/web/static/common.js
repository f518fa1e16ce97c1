// Shared helpers of the three pages. The pages compute no arithmetic: every number is fetched
// from the JSON API (stridelab.arith / stridelab.inspect on the server) and only drawn here.

/** GET an API path with query parameters; resolves to JSON, or throws an ApiError. */
export class ApiError extends Error {
  constructor(message, param, status) { super(message); this.param = param; this.status = status; }
}

export async function api(path, params = {}, signal = undefined) {
  const query = new URLSearchParams(params).toString();
  let response;
  try {
    response = await fetch(query ? `${path}?${query}` : path, { signal });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError("the stridelab server does not answer (was it stopped?)", null, 0);
  }
  let body = null;
  try { body = await response.json(); } catch { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error : `HTTP ${response.status}`;
    throw new ApiError(message, body ? body.param : null, response.status);
  }
  return body;
}

/** document.querySelector by data-testid. */
export function byTestId(id, root = document) {
  return root.querySelector(`[data-testid="${id}"]`);
}

/** Create an element with attributes and children (strings become text nodes). */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** Per-axis values as the page writes them: [6, 8] -> "6x8", [2] -> "2". */
export function axes(values) {
  return Array.isArray(values) ? values.join("x") : String(values);
}

/** Show an API error next to the control it names (data-testid) and in the page banner. */
export function showErrors(err, banner, controls) {
  for (const control of controls) {
    control.classList.remove("bad");
    const note = document.getElementById(`err-${control.dataset.testid}`);
    if (note) note.textContent = "";
  }
  if (!err) { banner.textContent = ""; return; }
  const target = err.param ? byTestId(err.param) : null;
  if (target) {
    target.classList.add("bad");
    const note = document.getElementById(`err-${err.param}`);
    if (note) note.textContent = err.message;
  }
  banner.textContent = err.param ? `${err.param}: ${err.message}` : err.message;
}
