import { useEffect, useState } from 'react';
import { api } from './api.js';
import { DeleteButton } from './DeleteButton.jsx';
import { TEMPLATES } from './templates.js';

export default function Chatflows() {
  const [chatflows, setChatflows] = useState(null);
  const [error, setError] = useState(null);
  const load = () =>
    api('/chatflows')
      .then(setChatflows)
      .catch((e) => setError(e.message));
  useEffect(() => {
    load();
  }, []);
  return (
    <section className="page">
      <div className="page-head">
        <h1>Chatflows</h1>
        <div className="actions">
          {Object.entries(TEMPLATES).map(([key, t]) => (
            <a key={key} className="button secondary" href={`#/edit/new?template=${key}`}>
              + {t.name}
            </a>
          ))}
        </div>
      </div>
      {error ? <div className="error-box">{error}</div> : null}
      {chatflows === null ? (
        <p>Loading…</p>
      ) : chatflows.length === 0 ? (
        <p>No chatflow yet: start from a template above.</p>
      ) : (
        <table className="list">
          <thead>
            <tr>
              <th>Name</th>
              <th>Nodes</th>
              <th>Id</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {chatflows.map((c) => (
              <tr key={c.id} data-chatflow={c.id}>
                <td>{c.name}</td>
                <td className="muted">{c.flowData.nodes.map((n) => n.type).join(', ')}</td>
                <td className="mono muted">{c.id}</td>
                <td className="row-actions">
                  <a className="button" href={`#/chat/${c.id}`}>Chat</a>
                  <a className="button secondary" href={`#/edit/${c.id}`}>Edit</a>
                  <DeleteButton
                    path={`/chatflows/${c.id}`}
                    confirm={`Delete ${c.name}?`}
                    onError={setError}
                    onDone={load}
                  />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}
