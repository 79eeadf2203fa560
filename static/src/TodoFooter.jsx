// footer.footer: items left, the three route filters, clear completed.
const FILTER_LINKS = [
  { filter: 'all', href: '#/', label: 'All' },
  { filter: 'active', href: '#/active', label: 'Active' },
  { filter: 'completed', href: '#/completed', label: 'Completed' },
];

export function TodoFooter({ activeCount, completedCount, filter, onClearCompleted }) {
  return (
    <footer className="footer">
      <span className="todo-count">
        <strong>{activeCount}</strong> {activeCount === 1 ? 'item' : 'items'} left
      </span>
      <ul className="filters">
        {FILTER_LINKS.map((link) => (
          <li key={link.filter}>
            <a href={link.href} className={link.filter === filter ? 'selected' : undefined}>
              {link.label}
            </a>
          </li>
        ))}
      </ul>
      {completedCount > 0 && (
        <button type="button" className="clear-completed" onClick={onClearCompleted}>
          Clear completed
        </button>
      )}
    </footer>
  );
}
