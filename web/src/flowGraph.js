// The editor's graph without React: a chatflow's flowData as React Flow holds it and back,
// where a new node goes, its id, the palette, and which node a save error is about.
//
// flowData (the chatflow body, README "Chatflows"):
//   { nodes: [{ id, type, inputs, position: { x, y } }], edges: [{ source, target, targetInput }] }
// The canvas (React Flow): nodes of the one type 'tw' whose `data` carries the node type
// (`twType`), its inputs and its spec from `GET /api/v1/nodes`; edges end at the target
// node's input port, which is the handle id.

// one edge per (source, target, port): React Flow needs ids, flowData has none
export function edgeId(source, target, targetInput) {
  return `${source}->${target}:${targetInput}`;
}

// `registry`: the node catalogue by type name ({ [type]: spec }); a node of an unknown
// type keeps an undefined spec and is drawn with its type name only.
export function toCanvas(flowData, registry) {
  const nodes = flowData.nodes.map((n, i) => ({
    id: n.id,
    type: 'tw',
    // a node saved without a position (written by hand, by the API) goes on a 3-wide grid
    position: n.position || { x: 60 + 320 * (i % 3), y: 60 + 200 * Math.floor(i / 3) },
    data: { twType: n.type, inputs: n.inputs || {}, spec: registry[n.type] },
  }));
  const edges = flowData.edges.map((e) => ({
    id: edgeId(e.source, e.target, e.targetInput),
    source: e.source,
    target: e.target,
    targetHandle: e.targetInput,
  }));
  return { nodes, edges };
}

// positions are rounded: dragging leaves fractions nobody needs stored
export function toFlowData(nodes, edges) {
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

// chains and agents on the right, what feeds them on the left: the first free spot down
// that column (no node within 240 px across and 150 px down)
export function freeSpot(nodes, category) {
  const x = category === 'chain' ? 420 : 40;
  for (let y = 40; ; y += 180) {
    const taken = nodes.some(
      (n) => Math.abs(n.position.x - x) < 240 && Math.abs(n.position.y - y) < 150,
    );
    if (!taken) return { x, y };
  }
}

// `<type>_<n>` with the lowest n no node has, as the templates name theirs
export function nextNodeId(nodes, type) {
  const taken = new Set(nodes.map((n) => n.id));
  let i = 0;
  while (taken.has(`${type}_${i}`)) i += 1;
  return `${type}_${i}`;
}

// The server names the field it rejects, e.g. `nodes[chat_0].inputs.model: Field required`
// (InvalidRequest's `field`, src/tailwinds/engine/compile.py): the node id inside the
// first `nodes[…]`, or null when the message is about no node.
export function invalidNodeId(message) {
  const match = /nodes\[([^\]]+)\]/.exec(message || '');
  return match ? match[1] : null;
}

// the canvas nodes with the save error on the node it names and on no other
// (`message` null clears every node's error)
export function markInvalid(nodes, message) {
  const nodeId = invalidNodeId(message);
  return nodes.map((n) => ({
    ...n,
    data: { ...n.data, error: nodeId === n.id ? message : undefined },
  }));
}

// The palette: [category, specs] pairs, the known categories first in their order, then
// any other category the server has, empty ones left out.
export function paletteGroups(registry, categories) {
  const groups = Object.fromEntries(Object.keys(categories).map((c) => [c, []]));
  Object.values(registry || {}).forEach((n) => {
    (groups[n.category] ||= []).push(n);
  });
  return Object.entries(groups).filter(([, list]) => list.length);
}
