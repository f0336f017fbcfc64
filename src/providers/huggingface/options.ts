import { Type } from '@sinclair/typebox';

/** `provider_options` a Hugging Face Inference model takes, beyond the task's own fields. */
export const HuggingFaceOptionsSchema = Type.Object(
  {
    scheduler: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 100,
        description:
          'Overrides the diffusion scheduler with a compatible one (text-to-image `parameters.scheduler`), e.g. "EulerDiscreteScheduler".',
      }),
    ),
  },
  { additionalProperties: false },
);

export function readScheduler(options: Record<string, unknown>): string | undefined {
  const value = options.scheduler;
  return typeof value === 'string' && value !== '' ? value : undefined;
}
