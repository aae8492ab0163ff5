import { useState } from 'react';
import { snippets } from './snippets.js';

export default function ApiDialog({ chatflow, onClose }) {
  const code = snippets(window.location.origin, chatflow.id, Boolean(chatflow.apiKeyId));
  const [tab, setTab] = useState('python');
  const [copied, setCopied] = useState(false);
  return (
    <div className="modal-backdrop" onClick={onClose}>
      <div
        className="modal wide"
        role="dialog"
        aria-label="Use via API"
        onClick={(e) => e.stopPropagation()}
      >
        <div className="page-head">
          <h2>Use via API</h2>
          <button className="link" onClick={onClose} aria-label="Close">
            ✕
          </button>
        </div>
        <div className="tabs" role="tablist">
          {[
            ['python', 'Python'],
            ['javascript', 'JavaScript'],
            ['curl', 'curl'],
          ].map(([key, label]) => (
            <button
              key={key}
              role="tab"
              aria-selected={tab === key}
              className={tab === key ? 'tab active' : 'tab'}
              onClick={() => {
                setTab(key);
                setCopied(false);
              }}
            >
              {label}
            </button>
          ))}
        </div>
        {chatflow.apiKeyId ? (
          <p className="muted">This chatflow needs its API key: put it where the snippet says.</p>
        ) : null}
        <pre className="snippet" data-language={tab}>
          <code>{code[tab]}</code>
        </pre>
        <button
          onClick={() => {
            navigator.clipboard?.writeText(code[tab]).then(() => setCopied(true));
          }}
        >
          {copied ? 'Copied' : 'Copy'}
        </button>
      </div>
    </div>
  );
}
