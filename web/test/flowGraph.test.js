// The editor's graph: flowData to React Flow's nodes and edges and back, where new nodes
// go, their ids, the palette, and the node a server validation error is about.
import { describe, expect, it } from 'vitest';
import {
  edgeId,
  freeSpot,
  invalidNodeId,
  markInvalid,
  nextNodeId,
  paletteGroups,
  toCanvas,
  toFlowData,
} from '../src/flowGraph.js';

// entries of `GET /api/v1/nodes` (engine/registry.py describe_nodes), inputs trimmed
const spec = (type, category, ports = {}) => ({
  type,
  category,
  label: type,
  answers: category !== 'memory',
  inputs: { type: 'object', properties: {} },
  ports,
});
const REGISTRY = {
  chatOpenAI: spec('chatOpenAI', 'chatModel'),
  bufferWindowMemory: spec('bufferWindowMemory', 'memory'),
  conversationChain: spec('conversationChain', 'chain', {
    model: { category: 'chatModel', required: true, many: false },
    memory: { category: 'memory', required: false, many: false },
  }),
};

const FLOW_DATA = {
  nodes: [
    { id: 'chat_0', type: 'chatOpenAI', inputs: { model: 'gpt-4o-mini' }, position: { x: 40, y: 40 } },
    { id: 'memory_0', type: 'bufferWindowMemory', inputs: { k: 10 }, position: { x: 40, y: 260 } },
    { id: 'chain_0', type: 'conversationChain', inputs: {}, position: { x: 420, y: 140 } },
  ],
  edges: [
    { source: 'chat_0', target: 'chain_0', targetInput: 'model' },
    { source: 'memory_0', target: 'chain_0', targetInput: 'memory' },
  ],
};

describe('toCanvas', () => {
  it('makes one React Flow node per flowData node, with its type, inputs and spec', () => {
    const { nodes } = toCanvas(FLOW_DATA, REGISTRY);
    expect(nodes[0]).toEqual({
      id: 'chat_0',
      type: 'tw',
      position: { x: 40, y: 40 },
      data: { twType: 'chatOpenAI', inputs: { model: 'gpt-4o-mini' }, spec: REGISTRY.chatOpenAI },
    });
    expect(nodes.map((n) => n.data.spec)).toEqual([
      REGISTRY.chatOpenAI,
      REGISTRY.bufferWindowMemory,
      REGISTRY.conversationChain,
    ]);
  });

  it('ends each edge at the target port, with an id per source, target and port', () => {
    const { edges } = toCanvas(FLOW_DATA, REGISTRY);
    expect(edges).toEqual([
      { id: 'chat_0->chain_0:model', source: 'chat_0', target: 'chain_0', targetHandle: 'model' },
      {
        id: 'memory_0->chain_0:memory',
        source: 'memory_0',
        target: 'chain_0',
        targetHandle: 'memory',
      },
    ]);
    expect(edgeId('chat_0', 'chain_0', 'model')).toBe(edges[0].id);
  });

  it('keeps a node of a type the server does not know, without a spec', () => {
    const { nodes } = toCanvas(
      { nodes: [{ id: 'x_0', type: 'gone', inputs: { a: 1 }, position: { x: 1, y: 2 } }], edges: [] },
      REGISTRY,
    );
    expect(nodes[0].data).toEqual({ twType: 'gone', inputs: { a: 1 }, spec: undefined });
  });

  it('places nodes saved without positions on a grid, apart, and gives them inputs', () => {
    const flowData = {
      nodes: Array.from({ length: 5 }, (_, i) => ({ id: `n_${i}`, type: 'chatOpenAI' })),
      edges: [],
    };
    const { nodes } = toCanvas(flowData, REGISTRY);
    const spots = nodes.map((n) => `${n.position.x},${n.position.y}`);
    expect(new Set(spots).size).toBe(5);
    expect(nodes[0].position).toEqual({ x: 60, y: 60 });
    expect(nodes[3].position).toEqual({ x: 60, y: 260 }); // the second row
    for (const node of nodes) expect(node.data.inputs).toEqual({});
  });
});

describe('toFlowData', () => {
  it('is the inverse of toCanvas', () => {
    const canvas = toCanvas(FLOW_DATA, REGISTRY);
    expect(toFlowData(canvas.nodes, canvas.edges)).toEqual(FLOW_DATA);
  });

  it('stores what the editor changed: inputs, dragged positions (rounded), new edges', () => {
    const canvas = toCanvas(FLOW_DATA, REGISTRY);
    canvas.nodes[0].data.inputs = { model: 'llama3' };
    canvas.nodes[2].position = { x: 433.6, y: 139.4 };
    canvas.edges = canvas.edges.slice(0, 1);
    const flowData = toFlowData(canvas.nodes, canvas.edges);
    expect(flowData.nodes[0].inputs).toEqual({ model: 'llama3' });
    expect(flowData.nodes[2].position).toEqual({ x: 434, y: 139 });
    expect(flowData.edges).toEqual([{ source: 'chat_0', target: 'chain_0', targetInput: 'model' }]);
    // nothing of React Flow's own leaks into what the server stores
    for (const node of flowData.nodes) {
      expect(Object.keys(node).sort()).toEqual(['id', 'inputs', 'position', 'type']);
    }
  });
});

describe('freeSpot', () => {
  const at = (x, y) => ({ position: { x, y } });

  it('puts chains on the right and everything else on the left', () => {
    expect(freeSpot([], 'chain')).toEqual({ x: 420, y: 40 });
    expect(freeSpot([], 'chatModel')).toEqual({ x: 40, y: 40 });
  });

  it('takes the first spot down the column that no node covers', () => {
    expect(freeSpot([at(40, 40)], 'tool')).toEqual({ x: 40, y: 220 });
    expect(freeSpot([at(40, 40), at(40, 220)], 'tool')).toEqual({ x: 40, y: 400 });
    // a gap left by a removed node is used again
    expect(freeSpot([at(40, 40), at(40, 400)], 'tool')).toEqual({ x: 40, y: 220 });
    // a node in the other column is no obstacle
    expect(freeSpot([at(420, 40)], 'tool')).toEqual({ x: 40, y: 40 });
  });

  it('never lands within a node\'s reach', () => {
    const nodes = [at(50, 30), at(100, 190), at(-150, 330), at(40, 560)];
    const spot = freeSpot(nodes, 'memory');
    for (const n of nodes) {
      const apart = Math.abs(n.position.x - spot.x) >= 240 || Math.abs(n.position.y - spot.y) >= 150;
      expect(apart, JSON.stringify(n.position)).toBe(true);
    }
  });
});

describe('nextNodeId', () => {
  it('numbers nodes by type from 0, filling gaps', () => {
    expect(nextNodeId([], 'calculator')).toBe('calculator_0');
    const nodes = [{ id: 'calculator_0' }, { id: 'calculator_2' }, { id: 'retriever_1' }];
    expect(nextNodeId(nodes, 'calculator')).toBe('calculator_1');
    expect(nextNodeId(nodes, 'retriever')).toBe('retriever_0');
    expect(nextNodeId([...nodes, { id: 'calculator_1' }], 'calculator')).toBe('calculator_3');
  });
});

describe('invalidNodeId', () => {
  // messages as the server words them (engine/compile.py, server/chatflows.py)
  it.each([
    ['nodes[chat_0].inputs.model: Field required', 'chat_0'],
    ["node 'chat_0' (chatOpenAI): nodes[chat_0].inputs.temperature: expected a number", 'chat_0'],
    ['nodes[chain_0].inputs.model: needs an edge from a chatModel node', 'chain_0'],
    ['nodes[retriever-1].inputs.documentStoreId: no document store with this id', 'retriever-1'],
    ['nodes[qa_0]: node \'qa_0\' (retriever) cannot answer', 'qa_0'],
  ])('finds the node in %j', (message, nodeId) => {
    expect(invalidNodeId(message)).toBe(nodeId);
  });

  it.each([
    'flowData: a chatflow needs exactly one answering node (one node with no outgoing edge); found 2: a, b',
    'flowData.edges: edge \'a\' → \'b\' names a missing node \'b\'',
    'HTTP 500',
    '',
    null,
    undefined,
  ])('finds none in %j', (message) => {
    expect(invalidNodeId(message)).toBeNull();
  });
});

describe('markInvalid', () => {
  it('puts the error on the node it names, clears the others, changes nothing else', () => {
    const { nodes } = toCanvas(FLOW_DATA, REGISTRY);
    const first = markInvalid(nodes, 'nodes[chat_0].inputs.model: Field required');
    expect(first.map((n) => n.data.error)).toEqual([
      'nodes[chat_0].inputs.model: Field required',
      undefined,
      undefined,
    ]);
    const second = markInvalid(first, 'nodes[chain_0].inputs.model: needs an edge');
    const errors = (list) => list.map((n) => n.data.error);
    expect(errors(second)).toEqual([undefined, undefined, 'nodes[chain_0].inputs.model: needs an edge']);
    expect(errors(markInvalid(second, null))).toEqual([undefined, undefined, undefined]);
    // a new array of new nodes: React Flow sees the change; the input is left as it was
    expect(nodes.map((n) => n.data.error)).toEqual([undefined, undefined, undefined]);
    expect(second[2].data.inputs).toBe(nodes[2].data.inputs);
    expect(second[2].position).toEqual(nodes[2].position);
  });
});

describe('paletteGroups', () => {
  const CATEGORIES = { chatModel: 'Chat models', chain: 'Chains and agents', tool: 'Tools' };

  it('groups node types by category, in the palette\'s order, empty categories left out', () => {
    const groups = paletteGroups({ ...REGISTRY, calculator: spec('calculator', 'tool') }, CATEGORIES);
    expect(groups.map(([category, list]) => [category, list.map((n) => n.type)])).toEqual([
      ['chatModel', ['chatOpenAI']],
      ['chain', ['conversationChain']],
      ['tool', ['calculator']],
      ['memory', ['bufferWindowMemory']], // a category the palette has no title for: last
    ]);
  });

  it('is empty before the registry has loaded', () => {
    expect(paletteGroups(null, CATEGORIES)).toEqual([]);
  });
});
