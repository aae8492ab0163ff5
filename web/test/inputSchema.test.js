// A node input's form field, from its JSON schema as pydantic writes it.
import { describe, expect, it } from 'vitest';
import { baseSchema, fieldKind } from '../src/inputSchema.js';

describe('baseSchema', () => {
  it('looks through an optional field\'s null', () => {
    const schema = { anyOf: [{ type: 'null' }, { type: 'integer' }], default: null, title: 'K' };
    expect(baseSchema(schema)).toEqual({ type: 'integer' });
    expect(baseSchema({ type: 'string' })).toEqual({ type: 'string' });
    expect(baseSchema({ anyOf: [{ type: 'null' }] })).toEqual({ type: 'null' });
  });
});

describe('fieldKind', () => {
  it.each([
    ['mode', { enum: ['a', 'b'], type: 'string' }, 'enum'],
    ['stream', { type: 'boolean' }, 'boolean'],
    ['temperature', { anyOf: [{ type: 'number' }, { type: 'null' }] }, 'number'],
    ['topK', { type: 'integer' }, 'number'],
    ['variables', { type: 'object' }, 'json'],
    ['stop', { anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'null' }] }, 'json'],
    ['systemMessage', { type: 'string' }, 'longText'],
    ['template', { type: 'string' }, 'longText'],
    ['headers', { type: 'string' }, 'longText'],
    ['model', { type: 'string' }, 'text'],
    ['baseUrl', { anyOf: [{ type: 'string' }, { type: 'null' }] }, 'text'],
  ])('edits %s as %j: %s', (name, schema, kind) => {
    expect(fieldKind(name, schema)).toBe(kind);
  });
});
