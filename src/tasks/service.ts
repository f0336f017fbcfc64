import { createHash } from 'node:crypto';
import { providerConcurrency, type Config } from '../config/config.js';
import type { Hints } from '../db/notifier.js';
import type { Pool } from '../db/pool.js';
import { ApiError } from '../domain/errors.js';
import type { CredentialAvailability, UnavailableReason } from '../credentials/availability.js';
import { fieldRefusal, validationFailed, type ValidationIssue } from '../domain/validation.js';
import { DEFAULT_MAX_PRIORITY, priorityNotAllowed, resolvePriority } from '../domain/priority.js';
import { readMaxPriority } from '../limits/user-priority.js';
import { tooManyActiveTasks, withUserTaskLock } from './active-limit.js';
import { isTerminal, type TaskParams, type TaskStatus } from '../domain/task.js';
import type { EventHub } from '../events/hub.js';
import { resolveInputImage, type InputImageDeps, type ResolvedInputImage } from '../inputs/resolve-input-image.js';
import type { ProviderRegistry } from '../providers/registry.js';
import { Router, type Candidate } from '../routing/router.js';
import { newTaskRoute, type TaskRouteTarget } from '../routing/task-route.js';
import type { TaskKind } from '../providers/types.js';
import { cancelTask, type CancelOutcome } from './cancel.js';
import { estimateSeconds, medianRunSeconds } from './position.js';
import { QueuePositions } from './queue-positions.js';
import { findImages, findTask, listTaskPage, type TaskFilter, type TaskOwner } from './queries.js';
import { requeueTaskRow } from './requeue.js';
import type { BillableTarget } from '../billing/estimate.js';
import type { ExternalBalanceCheck } from '../billing/external-balance.js';
import {
  insufficientCredits,
  mayCover,
  planTaskHold,
  recordHold,
  reserveCredits,
  taskCharges,
  type TaskCharges,
} from '../billing/holds.js';
import { Rollback } from '../db/transaction.js';
import type { TaskImageRow, TaskRow } from './rows.js';
import { checkProviderOptions } from './provider-options.js';
import { resolveOutputParams } from './output-params.js';
import type { OutputFormat } from '../domain/output-format.js';
import { QueueBound } from './queue-bound.js';
import { submitTask, type NewTask } from './submit.js';
import { liveWorkers } from './workers.js';

/** A submission as the API validated it (snake_case, optional fields still optional). */
export interface SubmitRequest {
  prompt: string;
  negative_prompt?: string;
  kind?: TaskKind;
  /** img2img: a data URL, an http(s) URL or `upload:<id>`. */
  image?: string;
  strength?: number;
  output_format?: OutputFormat;
  output_quality?: number;
  provider?: string;
  model?: string;
  width?: number;
  height?: number;
  steps?: number;
  guidance?: number;
  n?: number;
  seed?: number;
  priority?: number;
  max_attempts?: number;
  provider_options?: Record<string, unknown>;
}

export interface TaskView {
  task: TaskRow;
  images: TaskImageRow[];
  queuePosition: number | null;
  etaSeconds: number | null;
  /** Set on a queued task whose provider has no usable credential: why it waits instead of an ETA. */
  waitingFor: WaitingFor | null;
  /** The task's credit holds; absent when unpriced (or not read, as in a degraded answer). */
  charges?: TaskCharges;
}

export interface WaitingFor {
  reason: UnavailableReason;
  /** When a credential comes back by itself; null when only an admin can help. */
  availableAgainAt: Date | null;
}

export interface SubmitResult {
  view: TaskView;
  replayed: boolean;
  /**
   * Set when the task was queued (committed) but a read after the insert failed: the answer
   * then lacks queue_position and eta_seconds rather than failing, because a client told
   * "500" would submit again and make a duplicate. Callers log it.
   */
  degradedBy?: unknown;
}

/** A candidate that can serve the request, with the request as it would run there. */
interface RunnableTarget extends TaskRouteTarget {
  limits: { maxWidth: number; maxHeight: number };
}

export const DEFAULTS = { width: 512, height: 512, steps: 20, guidance: 7, n: 1, priority: 5, strength: 0.75 } as const;
const STATS_TTL_MS = 5000;

/** What the API and CLI do with tasks. Adapters are never called from here; workers do that. */
export class TaskService {
  private readonly statsCache = new Map<string, { at: number; value: Promise<number | null> }>();
  private readonly positions: QueuePositions;
  private readonly queueBound: QueueBound;
  readonly router: Router;

  constructor(
    private readonly pool: Pool,
    private readonly registry: ProviderRegistry,
    private readonly config: Pick<
      Config,
      'defaultProvider' | 'queue' | 'worker' | 'routes' | 'limits' | 'prices' | 'minBalanceMicro' | 'output'
    >,
    private readonly hints: Hints,
    private readonly hub?: EventHub,
    /** What img2img submits need to check and keep their input; without it img2img is refused. */
    private readonly inputs?: InputImageDeps,
    /** Credential pools' states, for `waiting_for`; without it queued tasks never say they wait. */
    private readonly availability?: CredentialAvailability,
    /** LICENSE_API_ENDPOINT: the licence API's balance check before a priced submit or retry. */
    private readonly externalBalance?: ExternalBalanceCheck,
  ) {
    // Checks every route against the providers here: a bad routes file stops the start.
    this.router = new Router(registry, config.routes, config.defaultProvider);
    this.positions = new QueuePositions(pool);
    this.queueBound = new QueueBound(pool, config.queue.maxQueuedTasks);
  }

  async submit(userId: string, request: SubmitRequest, idempotencyKey?: string): Promise<SubmitResult> {
    // Every refusal happens before submitTask's first write (see TAKE_TAG in submit.ts).
    const kind = request.kind ?? 'txt2img';
    checkKindFields(kind, request);
    const output = resolveOutputParams(request, this.config.output);
    const plan = this.router.plan(request);
    // One seed for every target, so a fall-through keeps the seed the task shows.
    const seeded = { ...request, seed: request.seed ?? Math.floor(Math.random() * 2 ** 32) };
    if (plan.route && request.provider_options !== undefined) {
      throw validationFailed([
        {
          field: 'provider_options',
          pointer: '/provider_options',
          in: 'body',
          code: 'NOT_ALLOWED',
          message: `provider_options cannot be sent to route ${plan.route.name}; its targets set their own in the routes file`,
        },
      ]);
    }
    // A route keeps the targets that can serve the request; a refusal names the first target's reason.
    const runnable: RunnableTarget[] = [];
    let refusal: unknown;
    for (const candidate of plan.candidates) {
      try {
        runnable.push(prepareTarget(candidate, kind, seeded, output));
      } catch (error) {
        refusal ??= error;
      }
    }
    if (runnable.length === 0) throw refusal;
    const first = runnable[0]!;
    // Before the input image: that check may fetch a URL, and this one is a single-row read.
    const priority = resolvePriority(request.priority, await readMaxPriority(this.pool, userId));
    // Last of the checks: it is the one that decodes an image. It must fit every target.
    const input =
      kind === 'img2img' ? await this.resolveInput(userId, request.image!, smallestLimits(runnable)) : undefined;
    const task: Omit<NewTask, 'requestHash'> = {
      userId,
      kind,
      inputImage: input?.image,
      provider: first.provider,
      model: first.model,
      params: first.params,
      providerOptions: first.provider_options,
      route: plan.route ? newTaskRoute(plan.route, runnable) : undefined,
      priority,
      maxAttempts: request.max_attempts ?? this.config.queue.maxAttempts,
      idempotencyKey,
    };
    // Priced (some target has a price above 0): a hold in the insert's transaction, or 402.
    const hold = await planTaskHold(this.pool, this.config.prices, billableTargets(runnable));
    const minBalanceMicro = this.config.minBalanceMicro;
    const requestHash =
      idempotencyKey === undefined ? undefined : fingerprint(task, { seedGiven: request.seed !== undefined });
    let stored: string | undefined;
    const discardInput = async () => {
      if (stored) await this.inputs?.storage.delete(stored).catch(() => undefined);
    };
    let outcome: Awaited<ReturnType<typeof submitTask>>;
    try {
      outcome = await submitTask(
        this.pool,
        this.hints,
        { ...task, requestHash },
        {
          beforeWrite: async () => {
            await this.queueBound.admit();
            // Early and read-only, so a sure refusal stores no input bytes; the hold decides.
            if (hold && !(await mayCover(this.pool, userId, hold, minBalanceMicro))) {
              throw await insufficientCredits(this.pool, userId, hold, minBalanceMicro);
            }
            await this.externalBalance?.check(userId, hold, minBalanceMicro);
            // The input's bytes go to storage only now, when nothing but the insert is left.
            if (input?.pending) {
              await this.inputs!.storage.put(input.image.storage_key, input.pending, input.image.content_type);
              stored = input.image.storage_key;
            }
          },
          maxActiveTasks: this.config.limits.userMaxActiveTasks,
          billing: hold ? { pool: this.pool, plan: hold, minBalanceMicro } : undefined,
        },
      );
    } catch (error) {
      await discardInput();
      throw error;
    }
    // A concurrent submit under the same key won: its task has an input of its own.
    if (outcome.kind !== 'created') await discardInput();
    if (outcome.kind === 'key_conflict') {
      throw new ApiError('IDEMPOTENCY_KEY_REUSED', undefined, { task_id: outcome.task.id });
    }
    if (outcome.kind === 'replayed') return { view: await this.view(outcome.task), replayed: true };
    this.queueBound.accepted();
    try {
      return { view: await this.view(outcome.task), replayed: false };
    } catch (error) {
      return { view: bareView(outcome.task), replayed: false, degradedBy: error };
    }
  }

  private async resolveInput(
    userId: string,
    image: string,
    model: { maxWidth: number; maxHeight: number },
  ): Promise<ResolvedInputImage> {
    if (!this.inputs) throw new ApiError('UNSUPPORTED_KIND', 'this server takes no input images');
    return resolveInputImage(this.inputs, userId, image, model);
  }

  /** `owner`: whose task it must be; null (admins) finds any user's. */
  async get(owner: TaskOwner, taskId: string): Promise<TaskView> {
    const task = await findTask(this.pool, owner, taskId);
    if (!task) throw new ApiError('TASK_NOT_FOUND', `no task ${taskId}`);
    return this.view(task);
  }

  /** Lists skip queue positions (one count per row would be wasteful); GET one task for it. */
  async list(userId: string, filter: TaskFilter): Promise<{ views: TaskView[]; nextCursor: string | null }> {
    const page = await listTaskPage(this.pool, { ...filter, userId });
    const charges = await taskCharges(
      this.pool,
      page.tasks.map((task) => task.id),
    );
    return {
      views: page.tasks.map((task) => ({
        ...bareView(task),
        images: page.images.get(task.id) ?? [],
        charges: charges.get(task.id),
      })),
      nextCursor: page.nextCursor,
    };
  }

  async cancel(owner: TaskOwner, taskId: string): Promise<{ outcome: CancelOutcome; view: TaskView }> {
    const outcome = await cancelTask(this.pool, this.hints, owner, taskId);
    if (outcome === 'not_found') throw new ApiError('TASK_NOT_FOUND', `no task ${taskId}`);
    const view = await this.get(owner, taskId);
    if (outcome === 'already_finished') {
      throw new ApiError('TASK_NOT_CANCELABLE', `task ${taskId} is already ${view.task.status}`, {
        task_status: view.task.status,
      });
    }
    return { outcome, view };
  }

  /**
   * Run a dead letter again. It counts like a submit: the priority ceiling and the owner's
   * active-task limit apply, and a priced task starts a new attempt-chain with a hold of its own
   * on the owner's account, in the requeue's transaction (402 and nothing changed when the
   * balance cannot cover it); it is charged again only if this chain succeeds. `owner` is the
   * caller's id, or null for an admin retrying any user's task (admins' ceiling is 10).
   *
   * Under the owner's task lock, the account row is locked before the requeue bumps the owner's
   * fair-queuing clock, the order a priced submit takes them in, so the two never deadlock.
   */
  async retry(owner: TaskOwner, taskId: string): Promise<TaskView> {
    const before = (await this.get(owner, taskId)).task;
    if (before.status !== 'failed' && before.status !== 'canceled') throw notRetryable(before);
    const ownerId = before.user_id;
    const maxPriority = owner === null ? DEFAULT_MAX_PRIORITY.admin : await readMaxPriority(this.pool, owner);
    if (before.priority > maxPriority) throw priorityNotAllowed(before.priority, maxPriority, "this task's priority");
    const maxActiveTasks = this.config.limits.userMaxActiveTasks;
    const plan = await planTaskHold(this.pool, this.config.prices, billableTargets(retryTargets(before)));
    const minBalanceMicro = this.config.minBalanceMicro;
    // Before anything is written: a refusal (402, or 503 when failing closed) changes nothing.
    await this.externalBalance?.check(ownerId, plan, minBalanceMicro);
    type RolledBack = 'refused' | 'not_requeued';
    const outcome = await withUserTaskLock(this.pool, ownerId, async (client) => {
      if (plan && !(await reserveCredits(client, ownerId, plan, minBalanceMicro))) {
        throw new Rollback<RolledBack>('refused');
      }
      const task = await requeueTaskRow(client, owner, taskId, { maxPriority, maxActiveTasks });
      if (!task) throw new Rollback<RolledBack>('not_requeued');
      if (plan) {
        await recordHold(client, { taskId, userId: ownerId, actorId: ownerId, plan, reason: 'estimate for a retry' });
      }
      return task;
    }).catch((error: unknown) => {
      if (error instanceof Rollback) return error.value as RolledBack;
      throw error;
    });
    if (outcome === 'refused') throw await insufficientCredits(this.pool, ownerId, plan!, minBalanceMicro);
    if (outcome !== 'not_requeued') {
      this.hints.taskReady(outcome.provider);
      this.hints.taskEvents();
      return this.view(outcome);
    }
    const current = (await this.get(owner, taskId)).task;
    // Still retryable but not requeued: the active-task limit said no (nothing was written).
    if (current.status === 'failed' || current.status === 'canceled') throw tooManyActiveTasks(maxActiveTasks);
    throw notRetryable(current);
  }

  /**
   * Resolve with the task once it has finished, or with its current state after `timeoutMs`.
   * Subscribes before reading, so a finish between the two cannot be missed.
   */
  async waitForFinish(userId: string, taskId: string, timeoutMs: number): Promise<TaskView> {
    if (!this.hub || timeoutMs <= 0) return this.get(userId, taskId);
    let wake!: () => void;
    const finished = new Promise<void>((resolve) => (wake = resolve));
    const { unsubscribe } = await this.hub.subscribe({
      taskId,
      userId,
      deliver: (event) => {
        if (isTerminal(event.data.status as TaskStatus)) wake();
      },
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      const current = await this.get(userId, taskId);
      if (isTerminal(current.task.status)) return current;
      await Promise.race([finished, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
      return await this.get(userId, taskId);
    } finally {
      clearTimeout(timer);
      unsubscribe();
    }
  }

  private async view(task: TaskRow): Promise<TaskView> {
    const charges = (await taskCharges(this.pool, [task.id])).get(task.id);
    if (task.status === 'succeeded') {
      const images = await findImages(this.pool, [task.id]);
      return { ...bareView(task), images: images.get(task.id) ?? [], charges };
    }
    if (task.status !== 'queued') return { ...bareView(task), charges };
    const [ahead, median, slots, waitingFor] = await Promise.all([
      this.positions.position(task),
      this.cached(`median:${task.provider}`, () => medianRunSeconds(this.pool, task.provider)),
      this.cached('slots', async () => (await liveWorkers(this.pool, this.config.worker.deadAfterMs)).slots),
      this.waitingFor(task.provider),
    ]);
    const capacity = Math.min(slots ?? 0, providerConcurrency(this.config.queue, task.provider));
    return {
      task,
      images: [],
      queuePosition: ahead,
      // No usable credential: any number would be invented, so none; `waiting_for` says why.
      etaSeconds: waitingFor ? null : estimateSeconds({ ahead, capacity, medianRunSeconds: median }),
      waitingFor,
      charges,
    };
  }

  /** Not cached: one small grouped read, and a stale answer would outlive an admin's fix. */
  private async waitingFor(providerId: string): Promise<WaitingFor | null> {
    const pool = this.registry.get(providerId)?.credentialPool;
    if (!pool || !this.availability) return null;
    const health = await this.availability.of(pool);
    return health.available ? null : { reason: health.reason, availableAgainAt: health.availableAgainAt };
  }

  private cached(key: string, load: () => Promise<number | null>): Promise<number | null> {
    const hit = this.statsCache.get(key);
    if (hit && Date.now() - hit.at < STATS_TTL_MS) return hit.value;
    const value = load();
    this.statsCache.set(key, { at: Date.now(), value });
    value.catch(() => this.statsCache.delete(key));
    return value;
  }
}

/** `image` is required for img2img and `image`/`strength` are refused for txt2img, naming the field. */
/**
 * The request as it would run on one candidate, defaults applied (the request's, then the
 * route target's, then the API's), or the ApiError saying why the candidate cannot serve it.
 */
function prepareTarget(
  candidate: Candidate,
  kind: TaskKind,
  request: SubmitRequest & { seed: number },
  output: Pick<TaskParams, 'output_format' | 'output_quality'>,
): RunnableTarget {
  const { model, defaults } = candidate;
  if (!model.kinds.includes(kind)) {
    throw fieldRefusal(
      'UNSUPPORTED_KIND',
      ['kind'],
      `${model.id} does not do ${kind}; it does ${model.kinds.join(', ')}`,
      {
        kind,
      },
    );
  }
  const params: TaskParams = {
    prompt: request.prompt,
    negative_prompt: request.negative_prompt ?? defaults.negative_prompt ?? null,
    width: request.width ?? defaults.width ?? model.sizes?.[0]?.width ?? Math.min(DEFAULTS.width, model.maxWidth),
    height: request.height ?? defaults.height ?? model.sizes?.[0]?.height ?? Math.min(DEFAULTS.height, model.maxHeight),
    steps: request.steps ?? defaults.steps ?? Math.min(DEFAULTS.steps, model.maxSteps),
    guidance: request.guidance ?? defaults.guidance ?? DEFAULTS.guidance,
    n: request.n ?? DEFAULTS.n,
    // Always stored, so any result can be reproduced from the task alone.
    seed: request.seed,
    ...(kind === 'img2img' ? { strength: request.strength ?? DEFAULTS.strength } : {}),
    ...output,
  };
  if (params.width > model.maxWidth || params.height > model.maxHeight) {
    throw fieldRefusal(
      'UNSUPPORTED_SIZE',
      ['width', 'height'],
      `${model.id} makes images up to ${model.maxWidth}x${model.maxHeight}`,
    );
  }
  if (model.sizes && !model.sizes.some((size) => size.width === params.width && size.height === params.height)) {
    const allowed = model.sizes.map((size) => `${size.width}x${size.height}`).join(', ');
    throw fieldRefusal('UNSUPPORTED_SIZE', ['width', 'height'], `${model.id} makes only these sizes: ${allowed}`, {
      sizes: model.sizes.map((size) => ({ width: size.width, height: size.height })),
    });
  }
  if (model.maxN !== undefined && params.n > model.maxN) {
    throw fieldRefusal('UNSUPPORTED_N', ['n'], `${model.id} makes at most ${model.maxN} image(s) per task`, {
      max_n: model.maxN,
    });
  }
  if (params.steps > model.maxSteps) {
    throw fieldRefusal('UNSUPPORTED_STEPS', ['steps'], `${model.id} takes at most ${model.maxSteps} steps`);
  }
  const providerOptions = candidate.options ?? request.provider_options ?? {};
  checkProviderOptions(providerOptions, model.options);
  return { provider: candidate.provider, model: model.id, limits: model, params, provider_options: providerOptions };
}

/** An img2img input is fitted once, to the smallest limits among the targets it may run on. */
function smallestLimits(targets: RunnableTarget[]): { maxWidth: number; maxHeight: number } {
  return {
    maxWidth: Math.min(...targets.map((target) => target.limits.maxWidth)),
    maxHeight: Math.min(...targets.map((target) => target.limits.maxHeight)),
  };
}

function checkKindFields(kind: TaskKind, request: SubmitRequest): void {
  const issues: ValidationIssue[] = [];
  if (kind === 'img2img' && request.image === undefined) {
    issues.push({
      field: 'image',
      pointer: '/image',
      in: 'body',
      code: 'REQUIRED',
      message: 'image is required for img2img',
    });
  }
  if (kind === 'txt2img') {
    for (const field of ['image', 'strength'] as const) {
      if (request[field] === undefined) continue;
      const message = `${field} is only for img2img; set kind to img2img`;
      issues.push({ field, pointer: `/${field}`, in: 'body', code: 'NOT_ALLOWED', message });
    }
  }
  if (issues.length > 0) throw validationFailed(issues);
}

const notRetryable = (task: TaskRow): ApiError =>
  new ApiError('TASK_NOT_RETRYABLE', `task ${task.id} is ${task.status}`, { task_status: task.status });

/** What a task may be charged for: each target it may run on, with its number of images. */
function billableTargets(targets: Array<Pick<TaskRouteTarget, 'provider' | 'model' | 'params'>>): BillableTarget[] {
  return targets.map((target) => ({ provider: target.provider, model: target.model, n: target.params.n }));
}

/** A retried task may run on its current target or, when routed, on any target after it. */
function retryTargets(task: TaskRow): Array<Pick<TaskRouteTarget, 'provider' | 'model' | 'params'>> {
  const rest = task.route ? task.route.targets.slice(task.route.index + 1) : [];
  return [{ provider: task.provider, model: task.model, params: task.params }, ...rest];
}

/** The task alone: no images, position or ETA (those take further reads). */
export const bareView = (task: TaskRow): TaskView => ({
  task,
  images: [],
  queuePosition: null,
  etaSeconds: null,
  waitingFor: null,
});

/**
 * The request as it will run, defaults applied, so a replay that spells out a default (or
 * orders keys differently) matches the original. A seed the server picked is left out: a
 * replay without a seed asks for "any seed", which the stored task satisfies.
 */
function fingerprint(task: Omit<NewTask, 'requestHash'>, { seedGiven }: { seedGiven: boolean }): string {
  const normalised = {
    kind: task.kind,
    provider: task.provider,
    model: task.model,
    route: task.route?.name ?? null,
    params: { ...task.params, seed: seedGiven ? task.params.seed : 'random' },
    provider_options: task.providerOptions,
    // The input by content: the same picture sent as a data URL or an upload is the same request.
    input_image: task.inputImage?.sha256 ?? null,
    priority: task.priority,
    max_attempts: task.maxAttempts,
  };
  const canonical = (value: unknown): unknown =>
    value && typeof value === 'object' && !Array.isArray(value)
      ? Object.fromEntries(
          Object.entries(value as Record<string, unknown>)
            .sort(([a], [b]) => (a < b ? -1 : 1))
            .map(([key, inner]) => [key, canonical(inner)]),
        )
      : Array.isArray(value)
        ? value.map(canonical)
        : value;
  return createHash('sha256')
    .update(JSON.stringify(canonical(normalised)))
    .digest('hex');
}
