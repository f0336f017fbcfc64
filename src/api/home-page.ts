import type { FastifySwaggerUiOptions } from '@fastify/swagger-ui';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { API_TITLE } from './openapi.js';

/** Easel's mark: a palette-shaped disc. Small enough to inline; no third-party branding. */
export const EASEL_LOGO_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><path fill="#3b5bdb" d="M16 2C8.3 2 2 7.9 2 15.2 2 22.5 7.6 28 14.6 28c1.8 0 2.6-1 2.6-2.2 0-1.6-1.4-2.2-1.4-3.6 0-1.3 1-2.2 2.4-2.2h3.2C26.5 20 30 16.6 30 12.3 30 6.5 23.7 2 16 2Z"/><circle cx="9" cy="14" r="2.2" fill="#fff"/><circle cx="13" cy="8.5" r="2.2" fill="#fff"/><circle cx="20" cy="8" r="2.2" fill="#fff"/><circle cx="24.5" cy="12.5" r="2.2" fill="#fff"/></svg>`;

/** /docs: Swagger UI without its top bar, titled and marked as Easel's. */
export function docsPageOptions(): FastifySwaggerUiOptions {
  return {
    routePrefix: '/docs',
    // BaseLayout drops Swagger UI's top bar (its logo and the "explore" box): the page is the API.
    uiConfig: { layout: 'BaseLayout', deepLinking: true },
    logo: { type: 'image/svg+xml', content: EASEL_LOGO_SVG, href: '/' },
    theme: {
      title: API_TITLE,
      favicon: [{ filename: 'easel.svg', rel: 'icon', type: 'image/svg+xml', sizes: 'any', content: EASEL_LOGO_SVG }],
    },
  };
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);

/** The page at `/` until the web console exists: what Easel is, where the docs are, a first call. */
export function homePage(origin: string): string {
  const base = escapeHtml(origin);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Easel</title>
<link rel="icon" type="image/svg+xml" href="data:image/svg+xml,${encodeURIComponent(EASEL_LOGO_SVG)}">
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 3rem auto; padding: 0 1rem; color: #1f2933; }
  h1 { display: flex; align-items: center; gap: .5rem; } h1 svg { width: 2rem; height: 2rem; }
  pre { background: #f3f4f6; padding: 1rem; overflow-x: auto; border-radius: .4rem; }
  a { color: #3b5bdb; }
</style>
</head>
<body>
<h1>${EASEL_LOGO_SVG} Easel</h1>
<p>A self-hosted image-generation gateway: one queued HTTP API with live progress in front of many image
providers. This server is running; its web console is not built yet.</p>
<ul>
  <li><a href="/docs">/docs</a>: the interactive API reference</li>
  <li><a href="/openapi.json">/openapi.json</a>: the OpenAPI 3.1 document</li>
  <li><a href="/readyz">/readyz</a>: is it ready (database, migrations, storage)?</li>
</ul>
<h2>Quick start</h2>
<pre><code># Submit a task (202: queued, with its queue position)
curl -s ${base}/v1/tasks -H 'content-type: application/json' \\
  -d '{"prompt": "a lighthouse at dusk", "seed": 7}'

# Follow it live (server-sent events), with the id from the answer
curl -N "${base}/v1/events?task_id=&lt;id&gt;"

# Fetch its image
curl -s ${base}/v1/tasks/&lt;id&gt;/images/0 -o lighthouse.png</code></pre>
<p>Or from the command line: <code>npx easel generate "a lighthouse at dusk" --out out</code>.</p>
</body>
</html>
`;
}

export async function homeRoute(request: FastifyRequest, reply: FastifyReply) {
  return reply.type('text/html; charset=utf-8').send(homePage(`${request.protocol}://${request.host}`));
}
