// Starting points for the editor: nodes with positions, edges by port.

const node = (id, type, x, y, inputs = {}) => ({ id, type, inputs, position: { x, y } });
const edge = (source, target, targetInput) => ({ source, target, targetInput });
// the templates' model: OpenAI's API, to be pointed elsewhere in the editor
const openAIModel = (x, y) =>
  node('chat_0', 'chatOpenAI', x, y, { model: 'gpt-4o-mini', baseUrl: 'https://api.openai.com/v1' });

export const TEMPLATES = {
  local: {
    name: 'Local assistant',
    flowData: { nodes: [node('chat_0', 'chatLocal', 80, 120)], edges: [] },
  },
  openai: {
    name: 'OpenAI-compatible chat',
    flowData: {
      nodes: [
        openAIModel(40, 40),
        node('memory_0', 'bufferWindowMemory', 40, 260, { k: 10 }),
        node('chain_0', 'conversationChain', 420, 140),
      ],
      edges: [edge('chat_0', 'chain_0', 'model'), edge('memory_0', 'chain_0', 'memory')],
    },
  },
  docs: {
    name: 'Docs Q&A',
    flowData: {
      nodes: [
        openAIModel(40, 40),
        node('retriever_0', 'retriever', 40, 260, { documentStoreId: '', topK: 4 }),
        node('qa_0', 'conversationalRetrievalQAChain', 420, 140),
      ],
      edges: [edge('chat_0', 'qa_0', 'model'), edge('retriever_0', 'qa_0', 'retriever')],
    },
  },
  agent: {
    name: 'Tool agent',
    flowData: {
      nodes: [
        openAIModel(40, 20),
        node('calc_0', 'calculator', 40, 220),
        node('clock_0', 'currentDateTime', 40, 360),
        node('agent_0', 'toolAgent', 420, 160),
      ],
      edges: [
        edge('chat_0', 'agent_0', 'model'),
        edge('calc_0', 'agent_0', 'tools'),
        edge('clock_0', 'agent_0', 'tools'),
      ],
    },
  },
};
