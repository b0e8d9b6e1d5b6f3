// Calls to the daemon's REST API with the session cookie. Failures become ApiError with the
// problem details' words, so every page can show what went wrong and, for forms, which field.

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(describe(status, problem, retryAfter));
    this.status = status;
    this.fields = (problem && problem.errors) || {};
  }
}

function describe(status, problem, retryAfter) {
  if (status === 429) return `Too many requests: try again in ${retryAfter || 60} s.`;
  if (problem && (problem.detail || problem.title)) return problem.detail || problem.title;
  if (status === 0) return 'Loop is not reachable: is the daemon running?';
  return `The daemon answered HTTP ${status}.`;
}

let unauthorizedHandler = () => {};

/** Called when a call finds the session gone (expired, logged out elsewhere, daemon reset). */
export function onUnauthorized(handler) { unauthorizedHandler = handler; }

export async function request(method, path, body) {
  const send = () => fetch(path, {
    method,
    credentials: 'same-origin',
    headers: body === undefined ? {} : { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let response;
  try {
    response = await send();
  } catch {
    // A read that met a dropped connection (the daemon restarting, the network changing) is
    // tried once more; a write is not, as it may have been carried out.
    if (method !== 'GET') throw new ApiError(0, null);
    await new Promise((resolve) => { setTimeout(resolve, 500); });
    try { response = await send(); } catch { throw new ApiError(0, null); }
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try { data = JSON.parse(text); } catch { data = { detail: text.slice(0, 200) }; }
  }
  if (!response.ok) {
    const isAuthCall = path.startsWith('/api/auth/login') || path.startsWith('/api/auth/setup');
    if (response.status === 401 && !isAuthCall) unauthorizedHandler();
    throw new ApiError(response.status, data, response.headers.get('Retry-After'));
  }
  return { data, headers: response.headers };
}

export const api = {
  get: async (path) => (await request('GET', path)).data,
  post: async (path, body) => (await request('POST', path, body)).data,
  patch: async (path, body) => (await request('PATCH', path, body)).data,
  put: async (path, body) => (await request('PUT', path, body)).data,
  del: async (path) => (await request('DELETE', path)).data,
};

/** Query string from an object, leaving out empty values. */
export function query(params) {
  const search = new URLSearchParams();
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== '') search.set(key, String(value));
  }
  const text = search.toString();
  return text ? `?${text}` : '';
}
