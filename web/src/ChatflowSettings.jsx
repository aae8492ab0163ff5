// The chatflow's own settings beside its graph: name, API key, allowed origins, rate limit,
// resume grace, allowed overrides, whether MCP clients see it as a tool, and the settings
// Flowise's chat widget reads (public-chatbotConfig).

export default function ChatflowSettings({ meta, setMeta, apiKeys }) {
  const limit = meta.rateLimit || {};
  const setLimit = (k, v) => {
    const next = { ...limit };
    if (v === '' || v === undefined) delete next[k];
    else next[k] = Number(v);
    setMeta({ ...meta, rateLimit: Object.keys(next).length ? next : null });
  };
  const tool = meta.mcpTool || { exposed: false };
  // an empty name or description means the default, which the server derives
  const setTool = (k, v) => setMeta({ ...meta, mcpTool: { ...tool, [k]: v === '' ? null : v } });
  const widget = meta.chatbotConfig || {};
  const setWidget = (k, v) => setMeta({ ...meta, chatbotConfig: { ...widget, [k]: v } });
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
        Approval timeout (seconds)
        <input
          type="number"
          name="approvalTimeoutSeconds"
          value={meta.approvalTimeoutSeconds ?? ''}
          placeholder="600: a tool call waiting for approval is then declined"
          onChange={(e) =>
            setMeta({
              ...meta,
              approvalTimeoutSeconds: e.target.value === '' ? null : Number(e.target.value),
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
      <fieldset>
        <legend>MCP tool</legend>
        <label>
          <input
            type="checkbox"
            name="mcpExposed"
            checked={Boolean(tool.exposed)}
            onChange={(e) => setTool('exposed', e.target.checked)}
          />
          Offer to MCP clients at /mcp (with this chatflow&apos;s API key)
        </label>
        <label>
          Tool name
          <input
            name="mcpName"
            value={tool.name ?? ''}
            placeholder="the chatflow's name"
            pattern="[A-Za-z0-9._\-]{1,64}"
            onChange={(e) => setTool('name', e.target.value)}
          />
        </label>
        <label>
          Tool description
          <textarea
            name="mcpDescription"
            value={tool.description ?? ''}
            placeholder="What the chatflow answers, for the model that picks tools"
            onChange={(e) => setTool('description', e.target.value)}
          />
        </label>
      </fieldset>
      <fieldset>
        <legend>Chat widget (Flowise embed)</legend>
        <label>
          Title
          <input name="widgetTitle" value={widget.title ?? ''} onChange={(e) => setWidget('title', e.target.value || null)} />
        </label>
        <label>
          Welcome message
          <input
            name="widgetWelcome"
            value={widget.welcomeMessage ?? ''}
            onChange={(e) => setWidget('welcomeMessage', e.target.value || null)}
          />
        </label>
        <label>
          Starter prompts (one a line)
          <textarea
            name="starterPrompts"
            value={(widget.starterPrompts || []).join('\n')}
            onChange={(e) => setWidget('starterPrompts', e.target.value.split('\n'))}
          />
        </label>
        <label>
          <input
            type="checkbox"
            name="chatFeedback"
            checked={Boolean(widget.chatFeedback)}
            onChange={(e) => setWidget('chatFeedback', e.target.checked)}
          />
          Thumbs up/down on answers
        </label>
        <label>
          <input
            type="checkbox"
            name="followUpPrompts"
            checked={Boolean(widget.followUpPrompts)}
            onChange={(e) => setWidget('followUpPrompts', e.target.checked)}
          />
          Follow-up prompts
        </label>
      </fieldset>
    </div>
  );
}
