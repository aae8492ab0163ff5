import { api } from './api.js';

// Deletes `path`, after the user says yes to `confirm` when there is one; a failure goes to
// `onError`, and `onDone` runs either way (the list is reloaded to show what is left).
export function DeleteButton({ path, confirm, onError, onDone }) {
  return (
    <button
      className="danger"
      onClick={async () => {
        if (confirm && !window.confirm(confirm)) return;
        await api(path, { method: 'DELETE' }).catch((err) => onError(err.message));
        onDone();
      }}
    >
      Delete
    </button>
  );
}
