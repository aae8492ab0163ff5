// A node's inputs as a form generated from its JSON schema (`GET /api/v1/nodes`).
import { useState } from 'react';
import { baseSchema, fieldKind } from './inputSchema.js';

function Field({ name, schema, value, required, onChange }) {
  const s = baseSchema(schema);
  const kind = fieldKind(name, schema);
  const label = (
    <span>
      {schema.title || name}
      {required ? ' *' : ''}
    </span>
  );
  if (kind === 'enum') {
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
  if (kind === 'boolean') {
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
  if (kind === 'number') {
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
  if (kind === 'json') {
    return <JsonField name={name} label={label} value={value} onChange={onChange} />;
  }
  const props = {
    name,
    value: value ?? '',
    placeholder: s.default !== undefined && s.default !== null ? String(s.default) : '',
    onChange: (e) => onChange(e.target.value === '' ? undefined : e.target.value),
  };
  return (
    <label>
      {label}
      {kind === 'longText' ? <textarea rows={4} {...props} /> : <input type="text" {...props} />}
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

export default function NodeForm({ node, onChange, onDelete }) {
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
