// `@ag-ui/client`'s HttpAgent against Tailwinds' AG-UI route; every event it receives is
// checked against `@ag-ui/core`'s schemas.
// node agui_client.mjs <route url> <question> [<earlier user question> <earlier answer>]
// Prints one JSON object: event types, schema failures, the messages the agent assembled.
// With AGUI_ABORT=1 the run is aborted (`agent.abortRun()`) at its first text content.
import { HttpAgent } from "@ag-ui/client";
import { EventSchema } from "@ag-ui/core/schemas";

const [url, question, earlierQuestion, earlierAnswer] = process.argv.slice(2);
const initialMessages = [];
if (earlierQuestion) {
  initialMessages.push({ id: "u0", role: "user", content: earlierQuestion });
  initialMessages.push({ id: "a0", role: "assistant", content: earlierAnswer });
}
initialMessages.push({ id: "u1", role: "user", content: question });
const agent = new HttpAgent({ url, threadId: `thread-${process.pid}`, initialMessages });
const out = { types: [], invalid: [], custom: [] };
try {
  const result = await agent.runAgent(
    { runId: `run-${process.pid}` },
    {
      onEvent({ event }) {
        out.types.push(event.type);
        if (process.env.AGUI_ABORT && event.type === "TEXT_MESSAGE_CONTENT" && !out.aborted) {
          out.aborted = true;
          agent.abortRun();
        }
        const checked = EventSchema.safeParse(event);
        if (!checked.success) out.invalid.push({ event, issues: checked.error.issues });
      },
      onCustomEvent({ event }) {
        out.custom.push({ name: event.name, value: event.value });
      },
      onRunErrorEvent({ event }) {
        out.runError = { message: event.message, code: event.code };
      },
      onRunFinishedEvent({ result }) {
        out.result = result;
      },
    },
  );
  out.newMessages = result.newMessages;
} catch (error) {
  out.error = String(error?.message ?? error);
}
out.messages = agent.messages;
console.log(JSON.stringify(out));
