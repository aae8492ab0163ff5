import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// The built page is committed into the Python package, so that `pip install` needs no Node.
export default defineConfig({
  plugins: [react()],
  base: '/',
  build: {
    outDir: '../src/tailwinds/web/static',
    emptyOutDir: true,
    chunkSizeWarningLimit: 1000,
  },
  server: { proxy: { '/api': 'http://127.0.0.1:3000' } },
  // Vitest: the pure modules (SSE, snippets, templates, the editor's graph), in Node
  test: { include: ['test/**/*.test.js'], environment: 'node' },
});
