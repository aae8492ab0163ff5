import { useEffect, useRef, useState } from 'react';
import ReactMarkdown from 'react-markdown';
import { api, authHeaders } from './api.js';
import { readEvents } from './sse.js';
import ApiDialog from './ApiDialog.jsx';

const chatKey = (chatflowId) => `tailwinds-chat-${chatflowId}`;

// Model output is markdown rendered without raw HTML: a `<img onerror=…>` token stays text.
function Answer({ text }) {
  return (
    <ReactMarkdown skipHtml={false} disallowedElements={['img']} unwrapDisallowed>
      {text}
    </ReactMarkdown>
  );
}

function Sources({ documents }) {
  return (
    <div className="sources" aria-label="Sources">
      {documents.map((doc, i) => (
        <details key={i} className="card source">
          <summary>
            {doc.metadata?.source || `Source ${i + 1}`}
            {typeof doc.metadata?.score === 'number' ? (
              <span className="muted"> · {doc.metadata.score.toFixed(3)}</span>
            ) : null}
          </summary>
          <pre>{doc.pageContent}</pre>
        </details>
      ))}
    </div>
  );
}

function Tools({ tools }) {
  return (
    <div className="tools" aria-label="Tools">
      {tools.map((t, i) => (
        <details key={i} className="card tool">
          <summary>
            <span className="badge">tool</span> {t.tool}
            <span className="muted"> ({JSON.stringify(t.toolInput)})</span>
          </summary>
          <pre>{typeof t.toolOutput === 'string' ? t.toolOutput : JSON.stringify(t.toolOutput)}</pre>
        </details>
      ))}
    </div>
  );
}

// A tool call waiting for a person: Approve (the input may be edited first) or Reject.
function PendingAction({ chatflowId, action, onDecided }) {
  const [input, setInput] = useState(() => JSON.stringify(action.toolInput, null, 2));
  const [reason, setReason] = useState('');
  const [problem, setProblem] = useState(null);
  async function decide(decision) {
    const body = { decision };
    if (decision === 'approve') {
      try {
        const edited = JSON.parse(input);
        if (JSON.stringify(edited) !== JSON.stringify(action.toolInput)) body.toolInput = edited;
      } catch {
        setProblem('the input is not JSON');
        return;
      }
    } else if (reason.trim()) {
      body.message = reason.trim();
    }
    const response = await fetch(`/api/v1/predictions/${chatflowId}/actions/${action.actionId}`, {
      method: 'POST',
      headers: authHeaders({ 'Content-Type': 'application/json' }),
      body: JSON.stringify(body),
    }).catch((err) => ({ ok: false, json: async () => ({ error: err.message }) }));
    if (!response.ok) {
      const data = await response.json().catch(() => ({}));
      setProblem(data.error || `HTTP ${response.status}`);
      return;
    }
    onDecided(action.actionId, decision);
  }
  if (action.decision) {
    return (
      <div className="card action" data-action={action.actionId}>
        <span className="badge">{action.decision}</span> {action.tool}
      </div>
    );
  }
  return (
    <div className="card action" role="group" aria-label="Approval" data-action={action.actionId}>
      <div>
        <span className="badge">approval</span> {action.tool}
        <span className="muted"> until {new Date(action.expiresAt).toLocaleTimeString()}</span>
      </div>
      <textarea
        aria-label="Tool input"
        value={input}
        onChange={(e) => setInput(e.target.value)}
        rows={Math.min(8, input.split('\n').length)}
      />
      <input
        aria-label="Reason"
        placeholder="Reason (if you reject)"
        value={reason}
        onChange={(e) => setReason(e.target.value)}
      />
      <div className="actions">
        <button type="button" onClick={() => decide('approve')}>
          Approve
        </button>
        <button type="button" className="danger" onClick={() => decide('reject')}>
          Reject
        </button>
      </div>
      {problem ? <div className="error-box">{problem}</div> : null}
    </div>
  );
}

// the model's reasoning, apart from the answer and collapsed: shown as plain text
function Thinking({ text, streaming }) {
  return (
    <details className="card thinking" aria-label="Thinking">
      <summary>
        <span className="badge">thinking</span>
        <span className="muted">{streaming ? ' …' : ` (${text.length} characters)`}</span>
      </summary>
      <pre>{text}</pre>
    </details>
  );
}

function Stats({ message }) {
  const s = message.stats;
  if (!s) return null;
  const parts = [];
  if (s.ttftMs != null) parts.push(`first token ${Math.round(s.ttftMs)} ms`);
  if (s.tokensPerS != null) parts.push(`${s.tokensPerS.toFixed(1)} tokens/s`);
  const u = message.usage;
  if (u && u.totalTokens != null)
    parts.push(`${u.promptTokens} prompt + ${u.completionTokens} completion tokens`);
  if (u && u.reasoningTokens != null) parts.push(`${u.reasoningTokens} reasoning`);
  if (message.status && message.status !== 'complete') parts.push(message.status);
  return <div className="stats">{parts.join(' · ')}</div>;
}

// what a prediction's `uploads` takes (server/prediction_uploads.py)
const UPLOAD_ACCEPT =
  'image/png,image/jpeg,image/gif,image/webp,.txt,.md,.csv,.json,.pdf,text/plain,text/markdown,text/csv,application/json,application/pdf';

const MIME_BY_SUFFIX = { md: 'text/markdown', csv: 'text/csv', json: 'application/json', txt: 'text/plain' };

// a file as one of Flowise's `uploads`: {data (a data URL), type: "file", name, mime}
function asUpload(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => {
      const suffix = file.name.split('.').pop().toLowerCase();
      const mime = file.type || MIME_BY_SUFFIX[suffix] || 'text/plain';
      resolve({ data: reader.result, type: 'file', name: file.name, mime });
    };
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

function fromStored(rows) {
  return rows.map((row) => ({
    role: row.role === 'userMessage' ? 'user' : 'api',
    text: row.content,
    status: row.status,
    error: row.status === 'error' ? row.error || 'failed' : null,
    feedback: row.feedback || null,
    sources: [],
    tools: [],
  }));
}

// a rating given in Flowise's chat widget (POST /api/v1/feedback)
function Rating({ feedback }) {
  const rating = feedback.rating === 'THUMBS_UP' ? 'rated up' : 'rated down';
  return (
    <div className="stats feedback" aria-label="Feedback">
      {rating}
      {feedback.content ? `: “${feedback.content}”` : ''}
    </div>
  );
}

export default function Playground({ chatflowId }) {
  const [chatflow, setChatflow] = useState(null);
  const [chatId, setChatId] = useState(() => localStorage.getItem(chatKey(chatflowId)));
  const [messages, setMessages] = useState([]);
  const [question, setQuestion] = useState('');
  const [files, setFiles] = useState([]);
  const [running, setRunning] = useState(false);
  const [showApi, setShowApi] = useState(false);
  const [pageError, setPageError] = useState(null);
  const controller = useRef(null);
  const bottom = useRef(null);

  useEffect(() => {
    api(`/chatflows/${chatflowId}`)
      .then(setChatflow)
      .catch((e) => setPageError(e.message));
  }, [chatflowId]);

  useEffect(() => {
    if (!chatId) {
      setMessages([]);
      return;
    }
    if (fromStream.current === chatId) return;
    api(`/chatmessage/${chatflowId}?chatId=${encodeURIComponent(chatId)}`)
      .then((rows) => setMessages(fromStored(rows)))
      .catch(() => setMessages([]));
  }, [chatflowId, chatId]);

  useEffect(() => {
    bottom.current?.scrollIntoView?.({ block: 'end' });
  }, [messages]);

  const update = (fn) =>
    setMessages((all) => {
      const copy = all.slice();
      copy[copy.length - 1] = fn({ ...copy[copy.length - 1] });
      return copy;
    });

  async function send(e) {
    e.preventDefault();
    const q = question.trim();
    if (!q || running) return;
    setQuestion('');
    setRunning(true);
    setMessages((all) => [
      ...all,
      { role: 'user', text: q, files: files.map((f) => f.name), sources: [], tools: [] },
      { role: 'api', text: '', thinking: '', sources: [], tools: [], streaming: true },
    ]);
    const started = performance.now();
    let firstAt = null;
    let tokens = 0;
    controller.current = new AbortController();
    try {
      const body = { question: q, streaming: true };
      if (chatId) body.chatId = chatId;
      if (files.length) body.uploads = await Promise.all(files.map(asUpload));
      setFiles([]);
      const response = await fetch(`/api/v1/predictions/${chatflowId}`, {
        method: 'POST',
        headers: authHeaders({ 'Content-Type': 'application/json' }),
        body: JSON.stringify(body),
        signal: controller.current.signal,
      });
      if (!response.ok) {
        const data = await response.json().catch(() => ({}));
        throw new Error(data.error || `HTTP ${response.status}`);
      }
      await readEvents(response, (name, data) => {
        if (name === 'start') {
          localStorage.setItem(chatKey(chatflowId), data.chatId);
          if (data.chatId !== chatId) setChatIdQuietly(data.chatId);
        } else if (name === 'token') {
          tokens += 1;
          if (firstAt === null) firstAt = performance.now();
          update((m) => ({ ...m, text: m.text + data.token }));
        } else if (name === 'thinking') {
          update((m) => ({ ...m, thinking: (m.thinking || '') + data.thinking }));
        } else if (name === 'sourceDocuments') {
          update((m) => ({ ...m, sources: [...m.sources, ...data] }));
        } else if (name === 'action') {
          update((m) => ({ ...m, actions: [...(m.actions || []), data] }));
        } else if (name === 'usedTools') {
          const decided = Object.fromEntries(
            data.filter((t) => t.actionId).map((t) => [t.actionId, t.decision]),
          );
          update((m) => ({
            ...m,
            tools: [...m.tools, ...data],
            actions: (m.actions || []).map((a) =>
              decided[a.actionId] ? { ...a, decision: decided[a.actionId] } : a,
            ),
          }));
        } else if (name === 'metadata') {
          update((m) => ({ ...m, usage: data.usage, status: 'complete' }));
        } else if (name === 'error') {
          update((m) => ({
            ...m,
            error: data.error,
            status: data.code === 'aborted' ? 'aborted' : 'error',
          }));
        }
      });
    } catch (err) {
      if (err.name !== 'AbortError') update((m) => ({ ...m, error: err.message, status: 'error' }));
      else update((m) => ({ ...m, status: 'aborted' }));
    } finally {
      const ended = performance.now();
      update((m) => ({
        ...m,
        streaming: false,
        stats: {
          ttftMs: firstAt === null ? null : firstAt - started,
          tokensPerS:
            firstAt !== null && tokens > 1 ? (tokens - 1) / ((ended - firstAt) / 1000) : null,
        },
      }));
      setRunning(false);
      controller.current = null;
    }
  }

  // a chat id that came from the stream: its history is already on screen
  const fromStream = useRef(null);
  function setChatIdQuietly(id) {
    fromStream.current = id;
    setChatId(id);
  }

  async function stop() {
    const id = chatId || localStorage.getItem(chatKey(chatflowId));
    if (id) {
      await fetch(`/api/v1/predictions/${chatflowId}/abort`, {
        method: 'POST',
        headers: authHeaders({ 'Content-Type': 'application/json' }),
        body: JSON.stringify({ chatId: id }),
      }).catch(() => null);
    } else {
      controller.current?.abort();
    }
  }

  const decided = (actionId, decision) =>
    setMessages((all) =>
      all.map((m) =>
        m.actions
          ? {
              ...m,
              actions: m.actions.map((a) => (a.actionId === actionId ? { ...a, decision } : a)),
            }
          : m,
      ),
    );

  function newChat() {
    localStorage.removeItem(chatKey(chatflowId));
    fromStream.current = null;
    setChatId(null);
    setMessages([]);
  }

  if (pageError) return <div className="page error-box">{pageError}</div>;
  return (
    <section className="page playground">
      <div className="page-head">
        <h1>{chatflow ? chatflow.name : '…'}</h1>
        <div className="actions">
          <button className="secondary" onClick={newChat} disabled={running}>
            New chat
          </button>
          <button className="secondary" onClick={() => setShowApi(true)}>
            Use via API
          </button>
          <a className="button secondary" href={`#/edit/${chatflowId}`}>Edit</a>
        </div>
      </div>
      <div className="chat" aria-live="polite">
        {messages.map((m, i) => (
          <div key={i} className={`message ${m.role}`} data-role={m.role}>
            {m.sources.length ? <Sources documents={m.sources} /> : null}
            {m.tools.length ? <Tools tools={m.tools} /> : null}
            {m.thinking ? <Thinking text={m.thinking} streaming={m.streaming && !m.text} /> : null}
            {(m.actions || []).map((a) => (
              <PendingAction
                key={a.actionId}
                chatflowId={chatflowId}
                action={a}
                onDecided={decided}
              />
            ))}
            <div className="bubble">
              {m.role === 'user' ? m.text : <Answer text={m.text} />}
              {m.files?.length ? <div className="muted small">attached: {m.files.join(', ')}</div> : null}
              {m.streaming && !m.text ? <span className="cursor">▍</span> : null}
            </div>
            {m.error ? (
              <div className="error-box" role="alert">
                {m.error}
              </div>
            ) : null}
            {m.role === 'api' ? <Stats message={m} /> : null}
            {m.feedback ? <Rating feedback={m.feedback} /> : null}
          </div>
        ))}
        <div ref={bottom} />
      </div>
      <form className="composer" onSubmit={send}>
        <textarea
          name="question"
          placeholder="Ask something…"
          value={question}
          onChange={(e) => setQuestion(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === 'Enter' && !e.shiftKey) send(e);
          }}
        />
        <label className="attach" title="Attach images or text files (txt, md, csv, json, pdf)">
          {files.length ? `${files.length} attached` : 'Attach'}
          <input
            type="file"
            name="uploads"
            multiple
            accept={UPLOAD_ACCEPT}
            onChange={(e) => setFiles(Array.from(e.target.files || []))}
          />
        </label>
        {running ? (
          <button type="button" className="danger" onClick={stop}>
            Stop
          </button>
        ) : (
          <button type="submit">Send</button>
        )}
      </form>
      {chatId ? <div className="muted small">chat {chatId}</div> : null}
      {showApi && chatflow ? (
        <ApiDialog chatflow={chatflow} onClose={() => setShowApi(false)} />
      ) : null}
    </section>
  );
}
