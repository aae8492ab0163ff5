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
import ChatflowSettings from './ChatflowSettings.jsx';
import NodeForm from './NodeForm.jsx';
import {
  edgeId,
  freeSpot,
  markInvalid,
  nextNodeId,
  paletteGroups,
  toCanvas,
  toFlowData,
} from './flowGraph.js';
import { TEMPLATES } from './templates.js';

// -- a node on the canvas: its input ports on the left, its output on the right -------

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
          approvalTimeoutSeconds: chatflow.approvalTimeoutSeconds,
          mcpTool: chatflow.mcpTool,
          chatbotConfig: chatflow.chatbotConfig,
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
            id: edgeId(connection.source, connection.target, connection.targetHandle),
          },
          all,
        ),
      ),
    [setEdges],
  );

  const addNode = (type) => {
    const id = nextNodeId(nodes, type);
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

  const markErrors = (message) => setNodes((all) => markInvalid(all, message));

  async function save() {
    const body = { ...meta, flowData: toFlowData(nodes, edges) };
    if (meta.chatbotConfig) {
      // the editor keeps the blank lines being typed; the server takes none
      const prompts = (meta.chatbotConfig.starterPrompts || []).map((p) => p.trim()).filter(Boolean);
      body.chatbotConfig = { ...meta.chatbotConfig, starterPrompts: prompts };
    }
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

  const palette = useMemo(() => paletteGroups(registry, CATEGORIES), [registry]);

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
          <ChatflowSettings meta={meta} setMeta={setMeta} apiKeys={apiKeys} />
        )}
      </aside>
    </section>
  );
}
