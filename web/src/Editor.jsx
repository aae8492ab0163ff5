import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import {
  Background,
  Controls,
  Handle,
  Position,
  ReactFlow,
  addEdge,
  useEdgesState,
  useNodesState,
} from '@xyflow/react';
import '@xyflow/react/dist/style.css';
import { api } from './api.js';
import { TEMPLATES } from './templates.js';

// -- the graph as React Flow holds it, and as flowData stores it ----------------------

function toCanvas(flowData, registry) {
  const nodes = flowData.nodes.map((n, i) => ({
    id: n.id,
    type: 'tw',
    position: n.position || { x: 60 + 320 * (i % 3), y: 60 + 200 * Math.floor(i / 3) },
    data: { twType: n.type, inputs: n.inputs || {}, spec: registry[n.type] },
  }));
  const edges = flowData.edges.map((e) => ({
    id: `${e.source}->${e.target}:${e.targetInput}`,
    source: e.source,
    target: e.target,
    targetHandle: e.targetInput,
  }));
  return { nodes, edges };
}

function toFlowData(nodes, edges) {
  return {
    nodes: nodes.map((n) => ({
      id: n.id,
      type: n.data.twType,
      inputs: n.data.inputs,
      position: { x: Math.round(n.position.x), y: Math.round(n.position.y) },
    })),
    edges: edges.map((e) => ({ source: e.source, target: e.target, targetInput: e.targetHandle })),
  };
}

function TwNode({ data, selected }) {
  const spec = data.spec || { ports: {}, label: data.twType };
  return (
    <div className={`tw-node${selected ? ' selected' : ''}${data.error ? ' invalid' : ''}`}>
      <div className="tw-node-head">
        <strong>{spec.label}</strong>
        <span className="muted small">{data.twType}</span>
      </div>
      {Object.entries(spec.ports || {}).map(([port, p]) => (
        <div className="tw-port" key={port}>
          <Handle type="target" position={Position.Left} id={port} />
          <span>
            {port}
            {p.required ? ' *' : ''} <span className="muted small">({p.category})</span>
          </span>
        </div>
      ))}
      <div className="tw-port out">
        <span className="muted small">{spec.category}</span>
        <Handle type="source" position={Position.Right} id="out" />
      </div>
      {data.error ? <div className="tw-node-error">{data.error}</div> : null}
    </div>
  );
}

const nodeTypes = { tw: TwNode };

const CATEGORIES = {
  chatModel: 'Chat models',
  chain: 'Chains and agents',
  prompt: 'Prompts',
  memory: 'Memory',
  retriever: 'Retrievers',
  tool: 'Tools',
};

// chains and agents on the right, what feeds them on the left: the first free spot
function freeSpot(nodes, category) {
  const x = category === 'chain' ? 420 : 40;
  for (let y = 40; ; y += 180) {
    const taken = nodes.some(
      (n) => Math.abs(n.position.x - x) < 240 && Math.abs(n.position.y - y) < 150,
    );
    if (!taken) return { x, y };
  }
}

// -- a form from a node's JSON schema -------------------------------------------------

function baseSchema(schema) {
  if (schema.anyOf) return schema.anyOf.find((s) => s.type !== 'null') || schema.anyOf[0];
  return schema;
}

const LONG_TEXT = /template|message|description|schema|headers/i;

function Field({ name, schema, value, required, onChange }) {
  const s = baseSchema(schema);
  const label = (
    <span>
      {schema.title || name}
      {required ? ' *' : ''}
    </span>
  );
  if (s.enum) {
    return (
      <label>
        {label}
        <select name={name} value={value ?? ''} onChange={(e) => onChange(e.target.value || undefined)}>
          <option value="">—</option>
          {s.enum.map((v) => (
            <option key={v} value={v}>
              {v}
            </option>
          ))}
        </select>
      </label>
    );
  }
  if (s.type === 'boolean') {
    return (
      <label className="check">
        <input
          type="checkbox"
          name={name}
          checked={Boolean(value ?? s.default)}
          onChange={(e) => onChange(e.target.checked)}
        />
        {label}
      </label>
    );
  }
  if (s.type === 'number' || s.type === 'integer') {
    return (
      <label>
        {label}
        <input
          type="number"
          name={name}
          step={s.type === 'integer' ? 1 : 'any'}
          placeholder={s.default !== undefined ? String(s.default) : ''}
          value={value ?? ''}
          onChange={(e) => onChange(e.target.value === '' ? undefined : Number(e.target.value))}
        />
      </label>
    );
  }
  if (s.type === 'array' || s.type === 'object') {
    return <JsonField name={name} label={label} value={value} onChange={onChange} />;
  }
  const long = LONG_TEXT.test(name);
  const props = {
    name,
    value: value ?? '',
    placeholder: s.default !== undefined && s.default !== null ? String(s.default) : '',
    onChange: (e) => onChange(e.target.value === '' ? undefined : e.target.value),
  };
  return (
    <label>
      {label}
      {long ? <textarea rows={4} {...props} /> : <input type="text" {...props} />}
    </label>
  );
}

function JsonField({ name, label, value, onChange }) {
  const [text, setText] = useState(value === undefined ? '' : JSON.stringify(value, null, 1));
  const [bad, setBad] = useState(false);
  return (
    <label>
      {label}
      <textarea
        rows={3}
        name={name}
        className={bad ? 'bad' : ''}
        value={text}
        placeholder="JSON"
        onChange={(e) => {
          setText(e.target.value);
          if (!e.target.value.trim()) {
            setBad(false);
            onChange(undefined);
            return;
          }
          try {
            onChange(JSON.parse(e.target.value));
            setBad(false);
          } catch {
            setBad(true);
          }
        }}
      />
    </label>
  );
}

function NodeForm({ node, onChange, onDelete }) {
  const schema = node.data.spec?.inputs || { properties: {} };
  const required = new Set(schema.required || []);
  return (
    <div className="panel-body" aria-label={`Inputs of ${node.id}`}>
      <h3>
        {node.data.spec?.label || node.data.twType} <span className="muted small">{node.id}</span>
      </h3>
      {Object.entries(schema.properties || {}).map(([name, prop]) => (
        <Field
          key={`${node.id}-${name}`}
          name={name}
          schema={prop}
          required={required.has(name)}
          value={node.data.inputs[name]}
          onChange={(v) => {
            const inputs = { ...node.data.inputs };
            if (v === undefined) delete inputs[name];
            else inputs[name] = v;
            onChange(inputs);
          }}
        />
      ))}
      {Object.keys(schema.properties || {}).length === 0 ? (
        <p className="muted">No inputs.</p>
      ) : null}
      <button className="danger" onClick={onDelete}>
        Remove node
      </button>
    </div>
  );
}

function Settings({ meta, setMeta, apiKeys }) {
  const limit = meta.rateLimit || {};
  const setLimit = (k, v) => {
    const next = { ...limit };
    if (v === '' || v === undefined) delete next[k];
    else next[k] = Number(v);
    setMeta({ ...meta, rateLimit: Object.keys(next).length ? next : null });
  };
  return (
    <div className="panel-body" aria-label="Chatflow settings">
      <h3>Chatflow</h3>
      <label>
        Name
        <input name="name" value={meta.name} onChange={(e) => setMeta({ ...meta, name: e.target.value })} />
      </label>
      <label>
        API key
        <select
          name="apiKeyId"
          value={meta.apiKeyId || ''}
          onChange={(e) => setMeta({ ...meta, apiKeyId: e.target.value || null })}
        >
          <option value="">none: anyone who can reach the server</option>
          {apiKeys.map((k) => (
            <option key={k.id} value={k.id}>
              {k.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Allowed origins (comma-separated)
        <input
          name="allowedOrigins"
          value={(meta.allowedOrigins || []).join(', ')}
          placeholder="https://app.example.com"
          onChange={(e) =>
            setMeta({
              ...meta,
              allowedOrigins: e.target.value
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean),
            })
          }
        />
      </label>
      <fieldset>
        <legend>Rate limit</legend>
        <label>
          Requests
          <input type="number" name="requests" value={limit.requests ?? ''} onChange={(e) => setLimit('requests', e.target.value)} />
        </label>
        <label>
          per seconds
          <input type="number" name="windowS" value={limit.windowS ?? ''} placeholder="60" onChange={(e) => setLimit('windowS', e.target.value)} />
        </label>
        <label>
          At once
          <input type="number" name="concurrent" value={limit.concurrent ?? ''} onChange={(e) => setLimit('concurrent', e.target.value)} />
        </label>
      </fieldset>
      <label>
        Resume grace (seconds)
        <input
          type="number"
          name="resumeGraceSeconds"
          value={meta.resumeGraceSeconds ?? ''}
          placeholder="0: a disconnect stops the run"
          onChange={(e) =>
            setMeta({
              ...meta,
              resumeGraceSeconds: e.target.value === '' ? null : Number(e.target.value),
            })
          }
        />
      </label>
      <label>
        A question while the chat is answering
        <select
          name="concurrentTurns"
          value={meta.concurrentTurns || 'reject'}
          onChange={(e) => setMeta({ ...meta, concurrentTurns: e.target.value })}
        >
          <option value="reject">refuse it (409 chat_busy)</option>
          <option value="queue">wait for the answer, then run</option>
          <option value="interrupt">stop the answer, then run</option>
        </select>
      </label>
      <label>
        Overrides allowed (comma-separated input names)
        <input
          name="allowedOverrides"
          value={(meta.allowedOverrides || []).join(', ')}
          onChange={(e) =>
            setMeta({
              ...meta,
              allowedOverrides: e.target.value
                .split(',')
                .map((s) => s.trim())
                .filter(Boolean),
            })
          }
        />
      </label>
    </div>
  );
}

// -- the page -------------------------------------------------------------------------

export default function Editor({ chatflowId: rawId }) {
  const [chatflowId, query] = (rawId || 'new').split('?');
  const templateKey = new URLSearchParams(query || '').get('template');
  const [registry, setRegistry] = useState(null);
  const [nodes, setNodes, onNodesChange] = useNodesState([]);
  const [edges, setEdges, onEdgesChange] = useEdgesState([]);
  const [meta, setMeta] = useState({ name: 'New chatflow', allowedOrigins: [], allowedOverrides: [] });
  const [savedId, setSavedId] = useState(chatflowId === 'new' ? null : chatflowId);
  const [selected, setSelected] = useState(null);
  const [banner, setBanner] = useState(null);
  const [apiKeys, setApiKeys] = useState([]);
  const flow = useRef(null);

  // keep every node in view as nodes come and go
  useEffect(() => {
    const id = requestAnimationFrame(() => flow.current?.fitView({ maxZoom: 1 }));
    return () => cancelAnimationFrame(id);
  }, [nodes.length]);

  useEffect(() => {
    api('/nodes').then((list) => setRegistry(Object.fromEntries(list.map((n) => [n.type, n]))));
    api('/apikeys').then(setApiKeys).catch(() => setApiKeys([]));
  }, []);

  useEffect(() => {
    if (!registry) return;
    const load = async () => {
      let flowData;
      if (chatflowId === 'new') {
        const template = TEMPLATES[templateKey] || TEMPLATES.local;
        flowData = template.flowData;
        setMeta((m) => ({ ...m, name: template.name }));
      } else {
        const chatflow = await api(`/chatflows/${chatflowId}`);
        flowData = chatflow.flowData;
        setMeta({
          name: chatflow.name,
          apiKeyId: chatflow.apiKeyId,
          allowedOrigins: chatflow.allowedOrigins,
          allowedOverrides: chatflow.allowedOverrides,
          rateLimit: chatflow.rateLimit,
          resumeGraceSeconds: chatflow.resumeGraceSeconds,
          concurrentTurns: chatflow.concurrentTurns,
        });
      }
      const canvas = toCanvas(flowData, registry);
      setNodes(canvas.nodes);
      setEdges(canvas.edges);
    };
    load().catch((e) => setBanner({ error: e.message }));
  }, [registry, chatflowId, templateKey, setNodes, setEdges]);

  const onConnect = useCallback(
    (connection) =>
      setEdges((all) =>
        addEdge(
          {
            ...connection,
            id: `${connection.source}->${connection.target}:${connection.targetHandle}`,
          },
          all,
        ),
      ),
    [setEdges],
  );

  const addNode = (type) => {
    const taken = new Set(nodes.map((n) => n.id));
    let i = 0;
    while (taken.has(`${type}_${i}`)) i += 1;
    const id = `${type}_${i}`;
    setNodes((all) => [
      ...all,
      {
        id,
        type: 'tw',
        position: freeSpot(all, registry[type].category),
        data: { twType: type, inputs: {}, spec: registry[type] },
        selected: true,
      },
    ]);
    setSelected(id);
  };

  const markErrors = (message) => {
    const match = /nodes\[([^\]]+)\]/.exec(message || '');
    setNodes((all) =>
      all.map((n) => ({
        ...n,
        data: { ...n.data, error: match && match[1] === n.id ? message : undefined },
      })),
    );
  };

  async function save() {
    const body = { ...meta, flowData: toFlowData(nodes, edges) };
    try {
      const saved = savedId
        ? await api(`/chatflows/${savedId}`, { method: 'PUT', body })
        : await api('/chatflows', { method: 'POST', body });
      markErrors(null);
      setBanner({ ok: `Saved ${saved.name}` });
      if (!savedId) {
        setSavedId(saved.id);
        window.history.replaceState(null, '', `#/edit/${saved.id}`);
      }
      return saved;
    } catch (e) {
      markErrors(e.message);
      setBanner({ error: e.message });
      return null;
    }
  }

  function exportJson() {
    const data = JSON.stringify({ ...meta, flowData: toFlowData(nodes, edges) }, null, 2);
    const link = document.createElement('a');
    link.href = URL.createObjectURL(new Blob([data], { type: 'application/json' }));
    link.download = `${meta.name || 'chatflow'}.json`;
    link.click();
  }

  function importJson(file) {
    file.text().then((text) => {
      try {
        const data = JSON.parse(text);
        const flowData = data.flowData || data;
        const canvas = toCanvas(flowData, registry);
        setNodes(canvas.nodes);
        setEdges(canvas.edges);
        if (data.name) setMeta((m) => ({ ...m, name: data.name }));
        setBanner({ ok: `Imported ${file.name}: save to keep it` });
      } catch (e) {
        setBanner({ error: `${file.name}: ${e.message}` });
      }
    });
  }

  const palette = useMemo(() => {
    const groups = Object.fromEntries(Object.keys(CATEGORIES).map((c) => [c, []]));
    Object.values(registry || {}).forEach((n) => {
      (groups[n.category] ||= []).push(n);
    });
    return Object.entries(groups).filter(([, list]) => list.length);
  }, [registry]);

  const selectedNode = nodes.find((n) => n.id === selected);
  return (
    <section className="editor">
      <aside className="palette" aria-label="Nodes">
        {palette.map(([category, list]) => (
          <div key={category}>
            <h4>{CATEGORIES[category] || category}</h4>
            {list.map((n) => (
              <button key={n.type} className="palette-item" data-node-type={n.type} onClick={() => addNode(n.type)}>
                {n.label}
              </button>
            ))}
          </div>
        ))}
      </aside>
      <div className="canvas">
        <div className="toolbar">
          <button onClick={save}>Save</button>
          <button
            className="secondary"
            onClick={async () => {
              const saved = await save();
              if (saved) window.location.hash = `#/chat/${saved.id}`;
            }}
          >
            Save and chat
          </button>
          <button className="secondary" onClick={exportJson}>
            Export JSON
          </button>
          <label className="button secondary">
            Import JSON
            <input type="file" accept="application/json" hidden onChange={(e) => e.target.files[0] && importJson(e.target.files[0])} />
          </label>
          {banner ? (
            <span className={banner.error ? 'banner error' : 'banner ok'} role={banner.error ? 'alert' : 'status'}>
              {banner.error || banner.ok}
            </span>
          ) : null}
        </div>
        <ReactFlow
          nodes={nodes}
          edges={edges}
          nodeTypes={nodeTypes}
          onNodesChange={onNodesChange}
          onEdgesChange={onEdgesChange}
          onConnect={onConnect}
          onNodeClick={(_, node) => setSelected(node.id)}
          onPaneClick={() => setSelected(null)}
          onInit={(instance) => {
            flow.current = instance;
          }}
          fitView
          fitViewOptions={{ maxZoom: 1 }}
          deleteKeyCode={['Delete']}
        >
          <Background />
          <Controls />
        </ReactFlow>
      </div>
      <aside className="panel">
        {selectedNode ? (
          <NodeForm
            node={selectedNode}
            onChange={(inputs) =>
              setNodes((all) =>
                all.map((n) => (n.id === selectedNode.id ? { ...n, data: { ...n.data, inputs } } : n)),
              )
            }
            onDelete={() => {
              setNodes((all) => all.filter((n) => n.id !== selectedNode.id));
              setEdges((all) => all.filter((e) => e.source !== selectedNode.id && e.target !== selectedNode.id));
              setSelected(null);
            }}
          />
        ) : (
          <Settings meta={meta} setMeta={setMeta} apiKeys={apiKeys} />
        )}
      </aside>
    </section>
  );
}
