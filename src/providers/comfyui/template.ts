/**
 * ComfyUI workflow templates: a graph in ComfyUI's API format (what "Export (API)" saves) whose
 * Easel inputs are marked by placeholder values. A node input whose value is exactly
 * `"{{seed}}"` receives the task's seed as a number; a string input may also embed a text
 * placeholder (`"masterpiece, {{prompt}}"`). Marking by value, not by node title, keeps the
 * template a plain ComfyUI export the user can still load and run in ComfyUI after editing
 * the placeholders back.
 */

/** Every placeholder a template may carry, and whether its value is text or a number. */
export const PLACEHOLDERS = {
  prompt: 'text',
  negative_prompt: 'text',
  model: 'text',
  image: 'text',
  width: 'number',
  height: 'number',
  seed: 'number',
  steps: 'number',
  cfg: 'number',
  denoise: 'number',
  batch_size: 'number',
} as const;

export type Placeholder = keyof typeof PLACEHOLDERS;
export type TemplateValues = Partial<Record<Placeholder, string | number>>;

/** The placeholders a template of each kind must carry, or the task's own input would be ignored. */
export const REQUIRED_PLACEHOLDERS = {
  txt2img: ['prompt', 'width', 'height', 'seed', 'steps'],
  img2img: ['prompt', 'seed', 'steps', 'image', 'denoise'],
} as const satisfies Record<string, readonly Placeholder[]>;

export type Graph = Record<string, { class_type: string; inputs: Record<string, unknown>; _meta?: unknown }>;

export interface WorkflowTemplate {
  /** Where it came from, for messages: a file path or `built-in txt2img`. */
  source: string;
  graph: Graph;
  /** The placeholders found, each with where it sits (`"6".inputs.text`). */
  placeholders: Map<Placeholder, string[]>;
}

export class TemplateError extends Error {
  override name = 'TemplateError';
}

const PLACEHOLDER = /\{\{\s*([a-z_]+)\s*\}\}/g;
const WHOLE_PLACEHOLDER = /^\{\{\s*([a-z_]+)\s*\}\}$/;

const isPlaceholder = (name: string): name is Placeholder => Object.hasOwn(PLACEHOLDERS, name);

/**
 * A parsed, checked template. Refuses the UI format (`nodes`/`links` arrays), nodes without
 * `class_type`/`inputs`, unknown placeholders, a number placeholder inside a longer string,
 * and a template missing a required placeholder for `kind`.
 */
export function parseTemplate(
  json: string,
  source: string,
  kind: keyof typeof REQUIRED_PLACEHOLDERS,
): WorkflowTemplate {
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (error) {
    throw new TemplateError(`${source}: not valid JSON (${(error as Error).message})`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new TemplateError(`${source}: expected a JSON object of nodes in ComfyUI's API format`);
  }
  if (Array.isArray((parsed as Record<string, unknown>).nodes)) {
    throw new TemplateError(
      `${source}: this is ComfyUI's UI workflow format; save it with "Export (API)" (or Save (API Format)) instead`,
    );
  }
  const graph = parsed as Graph;
  const placeholders = new Map<Placeholder, string[]>();
  for (const [id, node] of Object.entries(graph)) {
    if (typeof node !== 'object' || node === null || typeof node.class_type !== 'string') {
      throw new TemplateError(`${source}: node "${id}" has no class_type; is this ComfyUI's API format?`);
    }
    if (typeof node.inputs !== 'object' || node.inputs === null || Array.isArray(node.inputs)) {
      throw new TemplateError(`${source}: node "${id}" (${node.class_type}) has no inputs object`);
    }
    for (const [input, value] of Object.entries(node.inputs)) {
      if (typeof value !== 'string') continue;
      const where = `"${id}".inputs.${input}`;
      const whole = WHOLE_PLACEHOLDER.exec(value);
      for (const match of value.matchAll(PLACEHOLDER)) {
        const name = match[1]!;
        if (!isPlaceholder(name)) {
          throw new TemplateError(
            `${source}: ${where} uses the unknown placeholder {{${name}}}; known: ${Object.keys(PLACEHOLDERS).join(', ')}`,
          );
        }
        if (PLACEHOLDERS[name] === 'number' && !whole) {
          throw new TemplateError(`${source}: ${where}: the number placeholder {{${name}}} must be the whole value`);
        }
        placeholders.set(name, [...(placeholders.get(name) ?? []), where]);
      }
    }
  }
  const missing = REQUIRED_PLACEHOLDERS[kind].filter((name) => !placeholders.has(name));
  if (missing.length > 0) {
    throw new TemplateError(
      `${source}: a ${kind} template must mark ${missing.map((name) => `{{${name}}}`).join(', ')} (set a node input's value to the placeholder)`,
    );
  }
  return { source, graph, placeholders };
}

/**
 * The graph to queue: a deep copy of the template with every placeholder replaced. A
 * placeholder the caller has no value for is an error here, not a literal `{{…}}` sent to
 * ComfyUI, where it would fail validation with a confusing message.
 */
export function fillTemplate(template: WorkflowTemplate, values: TemplateValues): Graph {
  const graph = structuredClone(template.graph);
  for (const node of Object.values(graph)) {
    for (const [input, value] of Object.entries(node.inputs)) {
      if (typeof value !== 'string' || !value.includes('{{')) continue;
      const whole = WHOLE_PLACEHOLDER.exec(value);
      if (whole) {
        node.inputs[input] = valueOf(template, whole[1] as Placeholder, values);
        continue;
      }
      node.inputs[input] = value.replace(PLACEHOLDER, (_, name: string) =>
        String(valueOf(template, name as Placeholder, values)),
      );
    }
  }
  return graph;
}

function valueOf(template: WorkflowTemplate, name: Placeholder, values: TemplateValues): string | number {
  const value = values[name];
  if (value === undefined) throw new TemplateError(`${template.source}: no value for {{${name}}}`);
  return value;
}
