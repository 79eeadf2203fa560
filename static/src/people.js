// Who else is here and what changed, as pure functions (docs/api.md, "Presence"
// and "Activity"): no DOM, no I/O, so node can test them.

/** The presence frame this tab sends: on ready, when an edit starts or stops, and as a beat. */
export const presenceFrame = (editing) => JSON.stringify({ type: 'presence', editing: editing ?? null });

/** The others in a presence message's `users` (the receiving user is in it too). */
export const others = (users, me) => (users ?? []).filter((u) => u.username !== me);

/** todo id -> the username of someone else editing it. */
export function editors(users, me) {
  const map = new Map();
  for (const u of others(users, me)) if (u.editing && !map.has(u.editing)) map.set(u.editing, u.username);
  return map;
}

/** One or two letters for a username: "bob" -> "B", "mary-ann" -> "MA". */
export function initials(name) {
  const parts = String(name).split(/[^\p{L}\p{N}]+/u).filter(Boolean);
  return ((parts[0]?.[0] ?? '?') + (parts[1]?.[0] ?? '')).toUpperCase();
}

/** What to say when the people change: who came, who went. */
export function arrivals(before, after, me) {
  const was = new Set(others(before, me).map((u) => u.username));
  const now = new Set(others(after, me).map((u) => u.username));
  const said = [];
  for (const name of now) if (!was.has(name)) said.push(`${name} opened this list`);
  for (const name of was) if (!now.has(name)) said.push(`${name} left this list`);
  return said.join('. ');
}

// ---- activity, paged newest first: { changes: [...], next: rev | null } ----

export const emptyActivity = Object.freeze({ changes: Object.freeze([]), next: null, loaded: false });

/** Fold one page in: `older` appends (the `before` page), otherwise it is the newest page. */
export function addPage(state, page, older = false) {
  const seen = new Set();
  const changes = (older ? [...state.changes, ...page.changes] : [...page.changes, ...state.changes])
    .filter((c) => !seen.has(c.rev) && seen.add(c.rev))
    .sort((a, b) => b.rev - a.rev);
  return { changes, next: older || !state.loaded ? page.next : state.next, loaded: true };
}

const q = (text) => `“${text}”`;
const ROLE = { editor: 'an editor', viewer: 'a viewer' };

/** One activity entry (or stream message) as a sentence. */
export function describeChange(c) {
  const who = c.by ?? 'Someone';
  if (c.kind === 'member' || c.type === 'member') {
    const m = c.member ?? {};
    if (m.role === 'owner') return `${who} created the list`;
    if (m.role == null) return m.username === c.by ? `${who} left` : `${who} removed ${m.username}`;
    return c.op === 'insert' ? `${who} added ${m.username} as ${ROLE[m.role] ?? m.role}` : `${who} made ${m.username} ${ROLE[m.role] ?? m.role}`;
  }
  if (c.kind === 'list') return c.op === 'delete' ? `${who} deleted the list` : `${who} renamed the list to ${q(c.list?.title)}`;
  const t = c.todo ?? {};
  if (c.op === 'insert') return `${who} added ${q(t.title)}`;
  if (c.op === 'delete') return `${who} deleted ${q(t.title)}`;
  return `${who} changed ${q(t.title)}${t.completed ? ' (completed)' : ''}`;
}
