import { useEffect, useState } from 'react';
import { adminToken, onUnauthorized, setAdminToken } from './api.js';
import Chatflows from './Chatflows.jsx';
import Playground from './Playground.jsx';
import Editor from './Editor.jsx';
import { ApiKeys, Credentials, DocumentStores } from './Admin.jsx';

function useRoute() {
  const [hash, setHash] = useState(window.location.hash || '#/');
  useEffect(() => {
    const changed = () => setHash(window.location.hash || '#/');
    window.addEventListener('hashchange', changed);
    return () => window.removeEventListener('hashchange', changed);
  }, []);
  return hash.slice(1).split('/').filter(Boolean);
}

function SignIn({ onDone }) {
  const [token, setToken] = useState('');
  return (
    <div className="modal-backdrop">
      <form
        className="modal"
        aria-label="Sign in"
        onSubmit={(e) => {
          e.preventDefault();
          setAdminToken(token.trim());
          onDone();
        }}
      >
        <h2>Sign in</h2>
        <p>This server asks for its admin token (TAILWINDS_ADMIN_TOKEN).</p>
        <input
          type="password"
          name="token"
          placeholder="Admin token"
          autoFocus
          value={token}
          onChange={(e) => setToken(e.target.value)}
        />
        <button type="submit">Sign in</button>
      </form>
    </div>
  );
}

export default function App() {
  const route = useRoute();
  const [needToken, setNeedToken] = useState(false);
  const [generation, setGeneration] = useState(0); // re-mount pages after signing in
  useEffect(() => onUnauthorized(() => setNeedToken(true)), []);
  const [page, id] = route;
  let content;
  // keyed by the id: a page's state (chat id, saved chatflow id) belongs to one chatflow,
  // and going from one chatflow to another (back, forward, an edited address) starts afresh
  if (page === 'chat' && id) content = <Playground key={id} chatflowId={id} />;
  else if (page === 'edit') content = <Editor key={id || 'new'} chatflowId={id} />;
  else if (page === 'documents') content = <DocumentStores />;
  else if (page === 'keys') content = <ApiKeys />;
  else if (page === 'credentials') content = <Credentials />;
  else content = <Chatflows />;
  return (
    <div className="app">
      <header className="topbar">
        <a className="brand" href="#/">Tailwinds</a>
        <nav>
          <a href="#/" className={!page ? 'active' : ''}>Chatflows</a>
          <a href="#/documents" className={page === 'documents' ? 'active' : ''}>Document stores</a>
          <a href="#/keys" className={page === 'keys' ? 'active' : ''}>API keys</a>
          <a href="#/credentials" className={page === 'credentials' ? 'active' : ''}>Credentials</a>
          <a href="/docs">API docs</a>
        </nav>
        {adminToken() ? (
          <button
            className="link"
            onClick={() => {
              setAdminToken('');
              setGeneration((g) => g + 1);
            }}
          >
            Sign out
          </button>
        ) : null}
      </header>
      <main key={generation}>{content}</main>
      {needToken ? (
        <SignIn
          onDone={() => {
            setNeedToken(false);
            setGeneration((g) => g + 1);
          }}
        />
      ) : null}
    </div>
  );
}
