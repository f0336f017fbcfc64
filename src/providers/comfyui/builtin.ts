import img2img from './workflows/img2img.json' with { type: 'json' };
import txt2img from './workflows/txt2img.json' with { type: 'json' };

/**
 * The templates shipped with Easel: SD 1.x/2.x/XL checkpoint graphs built from ComfyUI's core
 * nodes only (CheckpointLoaderSimple, CLIPTextEncode, EmptyLatentImage or LoadImage +
 * VAEEncode, KSampler, VAEDecode, SaveImage), so they run on a stock ComfyUI. Imported as JSON
 * so the build carries them; the files double as examples for users writing their own.
 */
export const BUILTIN_TEMPLATES = {
  txt2img: JSON.stringify(txt2img),
  img2img: JSON.stringify(img2img),
} as const;
