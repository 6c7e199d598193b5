import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// Built into web-playground/dist, which the Drydock server serves at `/`. During development
// (`npm run web:dev`) Vite proxies the API, WebSockets included, to DRYDOCK_URL.
const target = process.env['DRYDOCK_URL'] ?? 'http://127.0.0.1:4000';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/',
  build: { outDir: 'dist', emptyOutDir: true, sourcemap: true },
  server: {
    proxy: {
      '/graphql': {
        target,
        ws: true,
        changeOrigin: true,
        // The server acts as the local admin only for its own pages (src/server/origin.ts): the
        // proxied page is one of them, so its requests arrive as if from the server's origin.
        configure: (proxy) => {
          proxy.on('proxyReq', (request) => request.setHeader('origin', target));
          proxy.on('proxyReqWs', (request) => request.setHeader('origin', target));
        },
      },
    },
  },
});
