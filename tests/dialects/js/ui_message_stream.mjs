// What both AI SDK scripts do with a stream of UI message chunks: assemble it with the
// `ai` package's readUIMessageStream and, beside it, list the chunks' types in order.
import { readUIMessageStream } from "ai";

// Reads `stream` to its end: sets `out.message` (the assembled message) and `out.types`,
// and adds what readUIMessageStream reports to `out.errors`.
export async function readAll(stream, out) {
  const [forMessage, forTypes] = stream.tee();
  const types = (async () => {
    const seen = [];
    const reader = forTypes.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return seen;
      seen.push(value.type);
    }
  })();
  for await (const message of readUIMessageStream({
    stream: forMessage,
    onError: (error) => out.errors.push(String(error?.message ?? error)),
  })) {
    out.message = message;
  }
  out.types = await types;
}
