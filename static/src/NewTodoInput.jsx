// input.new-todo: Enter adds the trimmed title; an empty one is ignored.
import { useState } from 'react';
import { useAutoFocus } from './hooks.js';
import { MAX_TITLE } from './TodoItem.jsx';

export function NewTodoInput({ onAdd }) {
  const [text, setText] = useState('');
  const input = useAutoFocus();

  async function handleKeyDown(event) {
    // isComposing: Enter that confirms an IME candidate is not a submit.
    if (event.key !== 'Enter' || event.nativeEvent.isComposing) return;
    const title = text.trim();
    if (!title) return;
    setText('');
    const added = await onAdd(title);
    // Give the text back if the write failed and nothing new was typed since.
    if (!added) setText((current) => (current === '' ? title : current));
  }

  return (
    <input
      className="new-todo"
      placeholder="What needs to be done?"
      aria-label="New todo"
      ref={input}
      value={text}
      maxLength={MAX_TITLE}
      onChange={(e) => setText(e.target.value)}
      onKeyDown={handleKeyDown}
    />
  );
}
