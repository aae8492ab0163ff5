// Which form field edits a node input, from the input's JSON schema in `GET /api/v1/nodes`
// (pydantic's: an optional field is `anyOf: [<type>, {type: 'null'}]`).

// the schema of the value, an optional field's null left aside
export function baseSchema(schema) {
  if (schema.anyOf) return schema.anyOf.find((s) => s.type !== 'null') || schema.anyOf[0];
  return schema;
}

// inputs whose text runs to several lines, by name
const LONG_TEXT = /template|message|description|schema|headers/i;

// 'enum' (a select), 'boolean' (a checkbox), 'number', 'json' (arrays and objects, typed as
// JSON), 'longText' (a textarea) or 'text'
export function fieldKind(name, schema) {
  const s = baseSchema(schema);
  if (s.enum) return 'enum';
  if (s.type === 'boolean') return 'boolean';
  if (s.type === 'number' || s.type === 'integer') return 'number';
  if (s.type === 'array' || s.type === 'object') return 'json';
  return LONG_TEXT.test(name) ? 'longText' : 'text';
}
