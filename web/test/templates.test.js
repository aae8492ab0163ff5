// The editor's templates: flowData the server accepts. The server's compiler checks them
// too (tests/web/test_web_app_tooling.py compiles each); here, without Python, their shape
// and their node types against the names the server registers.
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { toCanvas, toFlowData } from '../src/flowGraph.js';
import { TEMPLATES } from '../src/templates.js';

// `type_name: ClassVar[str] = "chatOpenAI"` in the node classes: the names flowData stores
const NODES_DIR = new URL('../../src/tailwinds/nodes/', import.meta.url);
const SERVER_TYPES = new Set(
  readdirSync(NODES_DIR)
    .filter((file) => file.endsWith('.py'))
    .flatMap((file) => [
      ...readFileSync(new URL(file, NODES_DIR), 'utf8').matchAll(
        /type_name: ClassVar\[str\] = "(\w+)"/g,
      ),
    ])
    .map((match) => match[1]),
);

describe('TEMPLATES', () => {
  it('read the server\'s node types', () => {
    // a change of spelling in the node modules would leave this set empty
    expect(SERVER_TYPES).toContain('chatOpenAI');
    expect(SERVER_TYPES.size).toBeGreaterThan(10);
  });

  it('offer the four starting points the chatflow list links to', () => {
    expect(Object.keys(TEMPLATES)).toEqual(['local', 'openai', 'docs', 'agent']);
  });

  for (const [key, { name, flowData }] of Object.entries(TEMPLATES)) {
    describe(key, () => {
      const ids = flowData.nodes.map((n) => n.id);

      it('has a name and nodes of types the server registers', () => {
        expect(name.trim()).not.toBe('');
        for (const node of flowData.nodes) expect(SERVER_TYPES, node.id).toContain(node.type);
      });

      it('has unique node ids, positions and inputs objects', () => {
        expect(new Set(ids).size).toBe(ids.length);
        for (const node of flowData.nodes) {
          expect(node.id).toMatch(/^\w+$/);
          expect(Number.isFinite(node.position.x) && Number.isFinite(node.position.y)).toBe(true);
          expect(node.inputs).toBeTypeOf('object');
        }
      });

      it('has edges between its own nodes, one port each, and one answering node', () => {
        for (const edge of flowData.edges) {
          expect(ids).toContain(edge.source);
          expect(ids).toContain(edge.target);
          expect(edge.targetInput).toMatch(/^\w+$/);
        }
        const sources = new Set(flowData.edges.map((e) => e.source));
        // the server runs the one node nothing reads from (engine/compile.py)
        expect(ids.filter((id) => !sources.has(id))).toHaveLength(1);
      });

      it('comes back from the canvas as it went in', () => {
        const canvas = toCanvas(flowData, {});
        expect(toFlowData(canvas.nodes, canvas.edges)).toEqual(flowData);
      });
    });
  }
});
