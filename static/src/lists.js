// The user's lists as a pure function of the lists stream's messages (docs/api.md,
// "Lists and sharing"): a snapshot replaces them, changes upsert or remove by
// id. Oldest first, as the server sends them; the personal list leads.

/** Apply one lists-stream message (or a REST read given as a snapshot). */
export function applyListMessage(lists, message) {
  switch (message?.type) {
    case 'snapshot':
      return sortLists(message.lists ?? []);
    case 'change': {
      const list = message.list;
      if (!list?.id) return lists;
      const rest = (lists ?? []).filter((l) => l.id !== list.id);
      if (message.op === 'delete') return rest.length === (lists ?? []).length ? lists : rest;
      const old = (lists ?? []).find((l) => l.id === list.id);
      return sortLists([...rest, { ...old, ...list }]);
    }
    default:
      return lists;
  }
}

export function sortLists(lists) {
  return lists.slice().sort((a, b) => {
    if (a.personal !== b.personal) return a.personal ? -1 : 1;
    const at = Date.parse(a.created_time) || 0;
    const bt = Date.parse(b.created_time) || 0;
    return at - bt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
  });
}

/** What a role may do (docs/api.md): viewers read, editors write todos and rename, owners manage. */
export const canWrite = (role) => role === 'owner' || role === 'editor';
export const canManage = (role) => role === 'owner';
