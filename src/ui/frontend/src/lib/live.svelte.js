// The page's live state: loaded over REST, kept current by the WebSockets.
import { api, follow } from "./api.js";

export const live = $state({
  watchers: {}, // id -> watcher
  events: [], // newest first, at most EVENTS_KEPT
  stats: null,
  pipeline: { stages: [], wave: null, pipeline_error: null, plan_error: null },
  status: { watchers: "connecting", pipeline: "connecting" },
  error: "",
  needToken: false,
});

const EVENTS_KEPT = 2000;
let refreshTimer = null;

function report(err) {
  if (err.status === 401) live.needToken = true;
  live.error = err.message;
}

// A few screens of cards at 1280 px: fewer to render before the first paint
// than a whole page of the grid (120), which the full list then fills.
const FIRST_CARDS = 48;

// The first page of cards comes from a small request (newest first, as the
// full list is sorted), so they show before the full list, which search,
// filters and grouping need, has arrived: on 10,000 watchers that list is
// megabytes, so it is asked for only once the first cards are painted.
export async function loadWatchers() {
  try {
    const [first, stats] = await Promise.all([
      api(`/api/watchers?limit=${FIRST_CARDS}`),
      api("/api/watchers/stats"),
    ]);
    if (Object.keys(live.watchers).length === 0) {
      live.watchers = Object.fromEntries(first.watchers.map((w) => [w.id, w]));
    }
    live.stats = stats;
    live.needToken = false;
    live.error = "";
    await painted();
    // When the first cards were on screen (bench/ui_latency.py reads it).
    if (first.count > 0) performance.mark("pivot:watchers-visible");
    if (first.count < FIRST_CARDS) return; // that was all of them
    const listed = await api("/api/watchers");
    live.watchers = Object.fromEntries(listed.watchers.map((w) => [w.id, w]));
  } catch (err) {
    report(err);
  }
}

// Resolves after the browser painted what is on the page now.
function painted() {
  return new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
}

// Events and the pipeline are loaded when their tab is first opened, so the
// first load of the page asks only for what the watchers tab shows.
let eventsLoaded = false;
export function ensureEvents() {
  if (!eventsLoaded) {
    eventsLoaded = true;
    loadEvents();
  }
}
let pipelineLoaded = false;
export function ensurePipeline() {
  if (!pipelineLoaded) {
    pipelineLoaded = true;
    loadPipeline();
  }
}

export async function loadEvents() {
  try {
    const data = await api("/api/watchers/events?limit=500");
    live.events = data.events;
  } catch (err) {
    report(err);
  }
}

export async function loadPipeline() {
  try {
    live.pipeline = await api("/api/pipeline");
  } catch (err) {
    report(err);
  }
}

// Counts and last triggers change with every match: refetch the changed
// watchers at most every 300 ms rather than per event.
const dirty = new Set();
function refreshSoon(id) {
  dirty.add(id);
  if (refreshTimer) return;
  refreshTimer = setTimeout(async () => {
    refreshTimer = null;
    const ids = [...dirty];
    dirty.clear();
    for (const wid of ids) {
      try {
        live.watchers[wid] = await api(`/api/watchers/${wid}`);
      } catch (err) {
        if (err.status === 404) delete live.watchers[wid];
      }
    }
    try {
      live.stats = await api("/api/watchers/stats");
    } catch {
      /* shown on the next load */
    }
  }, 300);
}

// A stage's SLURM job (submitted, adopted, a new state, the end of its run)
// is taken from GET /api/pipeline, the pipeline_status projection's fold, so the
// page never folds those events a second way; they are a few per stage run.
let pipelineTimer = null;
function reloadPipelineSoon() {
  if (!pipelineLoaded || pipelineTimer) return;
  pipelineTimer = setTimeout(() => {
    pipelineTimer = null;
    loadPipeline();
  }, 100);
}

export function start() {
  loadWatchers();
  follow("/ws/watchers", {
    onStatus: (s) => (live.status.watchers = s),
    onReset: () => {
      loadWatchers();
      if (eventsLoaded) loadEvents();
    },
    onMessage: (m) => {
      if (m.type === "watcher_event") {
        live.events.unshift(m.event);
        if (live.events.length > EVENTS_KEPT) live.events.length = EVENTS_KEPT;
        if (m.event.type !== "watcher.removed") refreshSoon(m.event.watcher_id);
      } else if (m.type === "watcher_state_change") {
        const w = live.watchers[m.watcher_id];
        if (m.state === "removed") delete live.watchers[m.watcher_id];
        else if (w) w.state = m.state;
        else refreshSoon(m.watcher_id);
      }
    },
  });
  follow("/ws/pipeline", {
    onStatus: (s) => (live.status.pipeline = s),
    onReset: () => {
      if (pipelineLoaded) loadPipeline();
    },
    onMessage: (m) => {
      if (m.type !== "pipeline_event") return;
      if (m.stage) {
        const stages = live.pipeline.stages;
        let s = stages.find((x) => x.name === m.stage);
        if (!s) {
          s = { name: m.stage, state: "", duration: null, reason: "", last_error: "",
                executor: "", host: "", job: null };
          stages.push(s);
          stages.sort((a, b) => a.name.localeCompare(b.name));
          s = stages.find((x) => x.name === m.stage); // the reactive copy, not the object pushed
        }
        if (m.job) {
          reloadPipelineSoon();
          return;
        }
        s.state = m.state;
        const d = m.event.data;
        if (d.duration !== undefined) s.duration = d.duration;
        if (d.reason) s.reason = d.reason;
        if (d.reasons) s.reason = d.reasons.join("; ");
        if (d.error) s.last_error = d.error;
        if (m.state === "running") {
          s.last_run = m.event.at;
          // A new run: where it runs, and no job until it is submitted.
          s.executor = d.executor || "local";
          s.host = "";
          s.job = null;
        }
        if (s.job && !s.job.ended && m.state !== "running") reloadPipelineSoon();
      } else if (m.wave && pipelineLoaded) {
        loadPipeline();
      }
    },
  });
}
