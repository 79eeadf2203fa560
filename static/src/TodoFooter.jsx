// footer.footer: items left, the three route filters (kept per list), clear completed.
import { routeHash } from './model.js';
import { keepFocusFrom } from './hooks.js';

const FILTER_LINKS = [
  { filter: 'all', label: 'All' },
  { filter: 'active', label: 'Active' },
  { filter: 'completed', label: 'Completed' },
];

export function TodoFooter({ activeCount, completedCount, filter, hashPrefix, readOnly, onClearCompleted }) {
  return (
    <footer className="footer">
      <span className="todo-count" role="status">
        <strong>{activeCount}</strong> {activeCount === 1 ? 'item' : 'items'} left
      </span>
      <ul className="filters" aria-label="Show">
        {FILTER_LINKS.map((link) => (
          <li key={link.filter}>
            <a
              href={routeHash(hashPrefix, link.filter)}
              className={link.filter === filter ? 'selected' : undefined}
              aria-current={link.filter === filter ? 'page' : undefined}
            >
              {link.label}
            </a>
          </li>
        ))}
      </ul>
      {completedCount > 0 && !readOnly && (
        <button type="button" className="clear-completed" onClick={(e) => {
          keepFocusFrom(e.currentTarget);
          onClearCompleted();
        }}>
          Clear completed
        </button>
      )}
    </footer>
  );
}
