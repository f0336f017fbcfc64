import { Type, type Static } from '@sinclair/typebox';

const Name = (description: string) => Type.String({ minLength: 1, maxLength: 200, description });

/**
 * `provider_options` an AUTOMATIC1111 / Forge server takes beyond the task's own fields. Names
 * follow the WebUI API (`modules/api/models.py`) so its users recognise them.
 */
export const A1111OptionsSchema = Type.Object(
  {
    sampler_name: Type.Optional(Name('Sampler as the WebUI names it, e.g. "Euler a", "DPM++ 2M".')),
    scheduler: Type.Optional(Name('Schedule type (WebUI 1.9+ and Forge), e.g. "Karras", "Automatic".')),
    checkpoint: Type.Optional(
      Name('Checkpoint title to load for this task (`override_settings.sd_model_checkpoint`); overrides the model id.'),
    ),
    loras: Type.Optional(
      Type.Array(
        Type.Object(
          {
            name: Type.String({
              minLength: 1,
              maxLength: 200,
              pattern: '^[^<>:]+$',
              description: 'The LoRA file name without extension, as in `<lora:name:weight>`.',
            }),
            weight: Type.Optional(Type.Number({ minimum: -5, maximum: 5, default: 1 })),
          },
          { additionalProperties: false },
        ),
        {
          maxItems: 20,
          description: 'Appended to the prompt as `<lora:name:weight>`; writing that syntax in the prompt works too.',
        },
      ),
    ),
    clip_skip: Type.Optional(
      Type.Integer({ minimum: 1, maximum: 12, description: '`override_settings.CLIP_stop_at_last_layers`.' }),
    ),
    restore_faces: Type.Optional(Type.Boolean()),
    tiling: Type.Optional(Type.Boolean()),
    enable_hr: Type.Optional(Type.Boolean({ description: 'txt2img: the high-resolution second pass.' })),
    hr_scale: Type.Optional(Type.Number({ minimum: 1, maximum: 4 })),
    hr_upscaler: Type.Optional(Name('e.g. "Latent", "R-ESRGAN 4x+".')),
    hr_second_pass_steps: Type.Optional(Type.Integer({ minimum: 0, maximum: 150 })),
    hr_denoising_strength: Type.Optional(
      Type.Number({ minimum: 0, maximum: 1, description: 'txt2img with enable_hr: `denoising_strength`.' }),
    ),
    override_settings: Type.Optional(
      Type.Record(Type.String({ maxLength: 100 }), Type.Unknown(), {
        description: 'WebUI settings for this task only (restored afterwards), e.g. {"sd_vae": "Automatic"}.',
      }),
    ),
  },
  { additionalProperties: false },
);

export type A1111Options = Static<typeof A1111OptionsSchema>;
