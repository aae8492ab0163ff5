// Calls to the Tailwinds API, with the admin token when the user gave one.

const TOKEN_KEY = 'tailwinds-admin-token';

export function adminToken() {
  return sessionStorage.getItem(TOKEN_KEY) || '';
}

export function setAdminToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function authHeaders(extra = {}) {
  const token = adminToken();
  return token ? { ...extra, Authorization: `Bearer ${token}` } : extra;
}

export class ApiError extends Error {
  constructor(status, body) {
    super(body?.error || `HTTP ${status}`);
    this.status = status;
    this.code = body?.code;
  }
}

// listeners told when the server asks for the admin token
const unauthorized = new Set();
export function onUnauthorized(listener) {
  unauthorized.add(listener);
  return () => unauthorized.delete(listener);
}

export async function api(path, { method = 'GET', body, raw } = {}) {
  const headers = authHeaders(body !== undefined ? { 'Content-Type': 'application/json' } : {});
  const response = await fetch(`/api/v1${path}`, {
    method,
    headers,
    body: body !== undefined ? JSON.stringify(body) : undefined,
  });
  if (response.status === 401) {
    unauthorized.forEach((listener) => listener());
  }
  if (!response.ok) {
    let data = null;
    try {
      data = await response.json();
    } catch {
      /* not JSON */
    }
    throw new ApiError(response.status, data);
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}
