import { CURL, JAVASCRIPT, PYTHON } from './seedSnippets.js';

const PLACEHOLDER_URL = 'https://your-tailwinds-instance.com';

// The snippets as the docs print them, with the real URL, chatflow id and key header.
export function snippets(origin, chatflowId, needsKey) {
  const key = '<your-api-key>';
  let python = PYTHON.replaceAll(PLACEHOLDER_URL, origin).replace(
    'stream_prediction("your-chatflow-id"',
    `stream_prediction("${chatflowId}"`,
  );
  let javascript = JAVASCRIPT.replaceAll(PLACEHOLDER_URL, origin).replace(
    "streamPrediction('your-chatflow-id'",
    `streamPrediction('${chatflowId}'`,
  );
  let curl = CURL.replaceAll(PLACEHOLDER_URL, origin).replace('{chatflow-id}', chatflowId);
  if (needsKey) {
    python = python.replace(
      '"Content-Type": "application/json"',
      `"Content-Type": "application/json",\n        "Authorization": "Bearer ${key}"`,
    );
    javascript = javascript.replace(
      "'Content-Type': 'application/json'",
      `'Content-Type': 'application/json',\n                'Authorization': 'Bearer ${key}'`,
    );
    curl = curl.replace(
      '-H "Content-Type: application/json"',
      `-H "Content-Type: application/json" \\\n  -H "Authorization: Bearer ${key}"`,
    );
  }
  return { python, javascript, curl };
}
