// "Use via API": the published page's snippets, verbatim, with this server's URL, the
// chatflow id and, for a chatflow with an API key, the key header; still valid code.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { CURL, JAVASCRIPT, PYTHON } from '../src/seedSnippets.js';
import { snippets } from '../src/snippets.js';

// the published page, vendored for the server's tests (tests/integration/test_seed_snippets.py)
const SEED = readFileSync(new URL('../../tests/fixtures/api-streaming.seed.md', import.meta.url), 'utf8');
const ORIGIN = 'http://127.0.0.1:3000';
const CHATFLOW_ID = '5f0c8e9a-3b7d-4c21-9e6f-0a1b2c3d4e5f';
const PLACEHOLDERS = ['your-tailwinds-instance.com', 'your-chatflow-id', '{chatflow-id}'];
const LANGUAGES = ['python', 'javascript', 'curl'];

function seedBlock(language) {
  const blocks = [...SEED.matchAll(new RegExp('```' + language + '\\n([\\s\\S]*?)```', 'g'))];
  expect(blocks, `one ${language} block in the seed`).toHaveLength(1);
  return blocks[0][1];
}

function occurrences(text, part) {
  return text.split(part).length - 1;
}

// Python's and bash's own parsers: a snippet that stopped being code fails here, not when pasted
function syntaxError(language, code) {
  if (language === 'javascript') {
    try {
      new vm.Script(code);
      return null;
    } catch (err) {
      return String(err);
    }
  }
  const [command, args] =
    language === 'python'
      ? ['python3', ['-c', 'import ast, sys; ast.parse(sys.stdin.read())']]
      : ['bash', ['-n']];
  const run = spawnSync(command, args, { input: code, encoding: 'utf8' });
  if (run.error) throw run.error;
  return run.status === 0 ? null : run.stderr;
}

describe('seedSnippets', () => {
  it('are the published page\'s code blocks, byte for byte', () => {
    expect(PYTHON).toBe(seedBlock('python'));
    expect(JAVASCRIPT).toBe(seedBlock('javascript'));
    expect(CURL).toBe(seedBlock('bash'));
  });
});

describe('snippets', () => {
  for (const needsKey of [false, true]) {
    const code = snippets(ORIGIN, CHATFLOW_ID, needsKey);
    const label = needsKey ? 'with the key header' : 'without a key';

    it(`put the URL and chatflow id where the page has placeholders (${label})`, () => {
      for (const language of LANGUAGES) {
        for (const placeholder of PLACEHOLDERS) expect(code[language]).not.toContain(placeholder);
      }
      expect(code.python).toContain(`url = f"${ORIGIN}/api/v1/predictions/{chatflow_id}"`);
      expect(code.python).toContain(`stream_prediction("${CHATFLOW_ID}", "Hello world!")`);
      expect(code.javascript).toContain(
        'const url = `' + ORIGIN + '/api/v1/predictions/${chatflowId}`;',
      );
      expect(code.javascript).toContain(`streamPrediction('${CHATFLOW_ID}', 'Hello world!');`);
      expect(code.curl.split('\n')[0]).toBe(
        `curl ${ORIGIN}/api/v1/predictions/${CHATFLOW_ID} \\`,
      );
    });

    it(`change nothing else in the page's code (${label})`, () => {
      const undo = (text) =>
        text
          .replaceAll(ORIGIN, 'https://your-tailwinds-instance.com')
          .replace(`"${CHATFLOW_ID}"`, '"your-chatflow-id"')
          .replace(`'${CHATFLOW_ID}'`, "'your-chatflow-id'")
          .replace(CHATFLOW_ID, '{chatflow-id}')
          .replace(/,\n *"Authorization": "Bearer <your-api-key>"/, '')
          .replace(/,\n *'Authorization': 'Bearer <your-api-key>'/, '')
          .replace(/ \\\n {2}-H "Authorization: Bearer <your-api-key>"/, '');
      expect(undo(code.python)).toBe(PYTHON);
      expect(undo(code.javascript)).toBe(JAVASCRIPT);
      expect(undo(code.curl)).toBe(CURL);
    });

    it(`are still valid Python, JavaScript and shell (${label})`, () => {
      for (const language of LANGUAGES) {
        expect(syntaxError(language, code[language]), language).toBeNull();
      }
    });
  }

  it('send the API key as one Authorization header where the chatflow has one', () => {
    const withKey = snippets(ORIGIN, CHATFLOW_ID, true);
    const without = snippets(ORIGIN, CHATFLOW_ID, false);
    const headers = {
      python: '"Authorization": "Bearer <your-api-key>"',
      javascript: "'Authorization': 'Bearer <your-api-key>'",
      curl: '-H "Authorization: Bearer <your-api-key>"',
    };
    for (const language of LANGUAGES) {
      expect(occurrences(withKey[language], headers[language]), language).toBe(1);
      expect(without[language]).not.toContain('Authorization');
    }
    // inside the headers the request sends, beside the content type
    expect(withKey.python).toContain(
      '"Content-Type": "application/json",\n        "Authorization": "Bearer <your-api-key>"\n    }',
    );
    expect(withKey.javascript).toContain(
      "'Content-Type': 'application/json',\n                'Authorization': 'Bearer <your-api-key>'\n            },",
    );
    expect(withKey.curl).toContain(
      '-H "Content-Type: application/json" \\\n  -H "Authorization: Bearer <your-api-key>" \\\n  -d',
    );
  });
});
