import { useCallback, useEffect, useState } from 'react';
import { ApiError, api, authHeaders } from './api.js';
import { DeleteButton } from './DeleteButton.jsx';

function useList(path) {
  const [items, setItems] = useState(null);
  const [error, setError] = useState(null);
  const reload = useCallback(
    () =>
      api(path)
        .then((list) => {
          setItems(list);
          setError(null);
        })
        .catch((e) => setError(e.message)),
    [path],
  );
  useEffect(() => {
    reload();
  }, [reload]);
  return { items, error, setError, reload };
}

// XMLHttpRequest, not fetch: it reports upload progress
function upload(storeId, files, onProgress) {
  return new Promise((resolve, reject) => {
    const form = new FormData();
    for (const file of files) form.append('files', file);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/api/v1/document-stores/${storeId}/upsert`);
    Object.entries(authHeaders()).forEach(([k, v]) => xhr.setRequestHeader(k, v));
    xhr.upload.onprogress = (e) => e.lengthComputable && onProgress(e.loaded / e.total);
    xhr.onload = () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        /* not JSON */
      }
      if (xhr.status >= 200 && xhr.status < 300) resolve(body);
      else reject(new ApiError(xhr.status, body));
    };
    xhr.onerror = () => reject(new Error('the upload failed: network error'));
    xhr.send(form);
  });
}

function StoreRow({ store, onChanged, setError }) {
  const [progress, setProgress] = useState(null);
  const [result, setResult] = useState(null);
  return (
    <tr data-store={store.id}>
      <td>{store.name}</td>
      <td className="muted">
        {store.embedding?.type} {store.embedding?.model}
      </td>
      <td className="mono muted">{store.id}</td>
      <td className="row-actions">
        <label className="button secondary">
          Upload files
          <input
            type="file"
            multiple
            hidden
            name="files"
            onChange={async (e) => {
              const files = [...e.target.files];
              if (!files.length) return;
              setProgress(0);
              setResult(null);
              try {
                const done = await upload(store.id, files, setProgress);
                setResult(`${done.chunks} chunks from ${done.sources.length} file(s)`);
                onChanged();
              } catch (err) {
                setError(err.message);
              } finally {
                setProgress(null);
              }
            }}
          />
        </label>
        {progress !== null ? <progress value={progress} max={1} /> : null}
        {result ? <span className="ok small">{result}</span> : null}
        <DeleteButton
          path={`/document-stores/${store.id}`}
          confirm={`Delete the store ${store.name} and its chunks?`}
          onError={setError}
          onDone={onChanged}
        />
      </td>
    </tr>
  );
}

export function DocumentStores() {
  const { items, error, setError, reload } = useList('/document-stores');
  const [form, setForm] = useState({ name: '', type: 'openAIEmbeddings', model: '', baseUrl: '' });
  return (
    <section className="page">
      <h1>Document stores</h1>
      {error ? <div className="error-box" role="alert">{error}</div> : null}
      <form
        className="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          const embedding = { type: form.type, model: form.model };
          if (form.baseUrl) embedding.baseUrl = form.baseUrl;
          try {
            await api('/document-stores', { method: 'POST', body: { name: form.name, embedding } });
            setForm({ ...form, name: '' });
            reload();
          } catch (err) {
            setError(err.message);
          }
        }}
      >
        <input name="name" placeholder="Name" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
        <select name="type" value={form.type} onChange={(e) => setForm({ ...form, type: e.target.value })}>
          <option value="openAIEmbeddings">OpenAI-compatible embeddings</option>
          <option value="ollamaEmbeddings">Ollama embeddings</option>
        </select>
        <input name="model" placeholder="Embedding model" value={form.model} onChange={(e) => setForm({ ...form, model: e.target.value })} />
        <input name="baseUrl" placeholder="Base URL (optional)" value={form.baseUrl} onChange={(e) => setForm({ ...form, baseUrl: e.target.value })} />
        <button type="submit">Create store</button>
      </form>
      {items === null ? null : items.length === 0 ? (
        <p>No document store yet.</p>
      ) : (
        <table className="list">
          <tbody>
            {items.map((store) => (
              <StoreRow key={store.id} store={store} onChanged={reload} setError={setError} />
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function ApiKeys() {
  const { items, error, setError, reload } = useList('/apikeys');
  const [name, setName] = useState('');
  const [created, setCreated] = useState(null);
  return (
    <section className="page">
      <h1>API keys</h1>
      {error ? <div className="error-box" role="alert">{error}</div> : null}
      <form
        className="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            setCreated(await api('/apikeys', { method: 'POST', body: { name } }));
            setName('');
            reload();
          } catch (err) {
            setError(err.message);
          }
        }}
      >
        <input name="name" placeholder="Key name" value={name} onChange={(e) => setName(e.target.value)} />
        <button type="submit">Create key</button>
      </form>
      {created ? (
        <div className="card once" role="status">
          <p>
            The key <strong>{created.name}</strong>, shown this once (the server keeps only a
            hash):
          </p>
          <code className="secret" data-testid="new-key">{created.key}</code>
          <button className="link" onClick={() => setCreated(null)}>I have copied it</button>
        </div>
      ) : null}
      <table className="list">
        <tbody>
          {(items || []).map((k) => (
            <tr key={k.id}>
              <td>{k.name}</td>
              <td className="mono muted">{k.id}</td>
              <td className="row-actions">
                <DeleteButton path={`/apikeys/${k.id}`} onError={setError} onDone={reload} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}

export function Credentials() {
  const { items, error, setError, reload } = useList('/credentials');
  const [form, setForm] = useState({ name: '', provider: 'openai', apiKey: '' });
  return (
    <section className="page">
      <h1>Credentials</h1>
      <p className="muted">Stored encrypted; never shown again after saving.</p>
      {error ? <div className="error-box" role="alert">{error}</div> : null}
      <form
        className="inline-form"
        onSubmit={async (e) => {
          e.preventDefault();
          try {
            await api('/credentials', {
              method: 'POST',
              body: { name: form.name, provider: form.provider, data: { apiKey: form.apiKey } },
            });
            setForm({ name: '', provider: form.provider, apiKey: '' });
            reload();
          } catch (err) {
            setError(err.message);
          }
        }}
      >
        <input name="name" placeholder="Name" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} />
        <select name="provider" value={form.provider} onChange={(e) => setForm({ ...form, provider: e.target.value })}>
          <option value="openai">OpenAI-compatible</option>
          <option value="anthropic">Anthropic</option>
        </select>
        <input
          name="apiKey"
          type="password"
          autoComplete="off"
          placeholder="API key"
          value={form.apiKey}
          onChange={(e) => setForm({ ...form, apiKey: e.target.value })}
        />
        <button type="submit">Save credential</button>
      </form>
      <table className="list">
        <tbody>
          {(items || []).map((c) => (
            <tr key={c.id}>
              <td>{c.name}</td>
              <td className="muted">{c.provider}</td>
              <td className="mono muted">{c.id}</td>
              <td className="row-actions">
                <DeleteButton path={`/credentials/${c.id}`} onError={setError} onDone={reload} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </section>
  );
}
