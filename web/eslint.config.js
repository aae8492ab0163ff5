// ESLint's flat config: JavaScript's recommended rules, React's (JSX, the new JSX transform)
// and the Rules of Hooks with React's compiler checks. Run with `npx eslint .`, and by the
// project's test command (tests/web/test_web_app_tooling.py), warnings counted as failures.
import js from '@eslint/js';
import react from 'eslint-plugin-react';
import reactHooks from 'eslint-plugin-react-hooks';
import globals from 'globals';

export default [
  { ignores: ['node_modules/', 'dist/'] },
  js.configs.recommended,
  react.configs.flat.recommended,
  react.configs.flat['jsx-runtime'],
  reactHooks.configs.flat.recommended,
  {
    files: ['**/*.{js,jsx}'],
    languageOptions: {
      ecmaVersion: 2022,
      sourceType: 'module',
      globals: { ...globals.browser },
    },
    settings: { react: { version: 'detect' } },
    rules: {
      // props are documented by their use; the app has no PropTypes and ships none
      'react/prop-types': 'off',
      'react-hooks/exhaustive-deps': 'error',
    },
  },
  {
    // the build's and the tests' own files run in Node
    files: ['*.config.js', 'test/**/*.js'],
    languageOptions: { globals: { ...globals.node } },
  },
];
