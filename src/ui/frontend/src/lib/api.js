// Talking to `pivot ui`: REST with the bearer token, WebSockets that resume by seq.

const TOKEN_KEY = "pivot-ui-token";

function tokenFromFragment() {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    const token = decodeURIComponent(m[1]);
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", location.pathname + location.search);
    return token;
  }
  return null;
}

let token = tokenFromFragment() ?? sessionStorage.getItem(TOKEN_KEY) ?? "";

export function setToken(value) {
  token = value;
  sessionStorage.setItem(TOKEN_KEY, value);
}

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

export async function api(path, { method = "GET", body } = {}) {
  const headers = {};
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const r = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  try {
    data = await r.json();
  } catch {
    data = null;
  }
  if (!r.ok) {
    throw new ApiError(r.status, data?.error ?? `${r.status} ${r.statusText}`, data?.field ?? null);
  }
  return data;
}

// A WebSocket to `path` that reconnects by itself and resumes after the
// last seq it saw, so no event is lost across a reconnect.
// onMessage(msg) gets every message; onStatus("live" | "connecting" | "offline").
// onReset() is called when the server says we are too far behind (reload over REST).
export function follow(path, { onMessage, onStatus = () => {}, onReset = () => {} }) {
  let last = null;
  let ws = null;
  let stopped = false;
  let delay = 250;
  function connect() {
    if (stopped) return;
    onStatus("connecting");
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const after = last === null ? "" : `?after=${last}`;
    const protocols = token ? ["pivot", `bearer.${token}`] : ["pivot"];
    ws = new WebSocket(`${proto}//${location.host}${path}${after}`, protocols);
    ws.onmessage = (e) => {
      const msg = JSON.parse(e.data);
      if (msg.type === "hello") {
        if (last === null) last = msg.seq;
        delay = 250;
        onStatus("live");
        return;
      }
      if (msg.type === "reset") {
        last = msg.seq;
        onReset();
        onStatus("live");
        return;
      }
      if (typeof msg.seq === "number") last = Math.max(last ?? 0, msg.seq);
      onMessage(msg);
    };
    ws.onclose = () => {
      if (stopped) return;
      onStatus("offline");
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 5000);
    };
  }
  connect();
  return () => {
    stopped = true;
    ws?.close();
  };
}

// Watcher patterns are RE2; JavaScript's RegExp reads the common subset
// (named groups are (?P<name>...) in RE2, (?<name>...) here). Used only to
// highlight matches in the pattern tester; the server validates for real.
export function jsRegex(pattern) {
  try {
    return new RegExp(pattern.replace(/\(\?P</g, "(?<"), "d");
  } catch {
    return null;
  }
}

export function ago(ts) {
  if (!ts) return "never";
  const s = Math.max(0, Date.now() / 1000 - ts);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return new Date(ts * 1000).toLocaleString();
}

// Fuzzy match: every character of the query, in order (case-insensitive).
export function fuzzy(query, text) {
  const q = query.toLowerCase().replace(/\s+/g, "");
  if (!q) return true;
  const t = text.toLowerCase();
  let i = 0;
  for (const ch of t) {
    if (ch === q[i]) i += 1;
    if (i === q.length) return true;
  }
  return false;
}
