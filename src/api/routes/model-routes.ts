import { Type } from '@sinclair/typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Router } from '../../routing/router.js';

export interface ModelRouteRoutesOptions {
  router: Router;
}

const RouteTargetSchema = Type.Object({
  provider: Type.String(),
  model: Type.String(),
  defaults: Type.Record(Type.String(), Type.Unknown(), {
    description: 'Request fields this target uses when the request leaves them out.',
  }),
  options: Type.Record(Type.String(), Type.Unknown(), { description: "The target's provider_options." }),
});

/** `GET /v1/routes`: the named routes of EASEL_ROUTES_FILE, which a submit names as its `model`. */
export const modelRouteRoutes: FastifyPluginAsyncTypebox<ModelRouteRoutesOptions> = async (app, { router }) => {
  app.get(
    '/v1/routes',
    {
      schema: {
        summary: 'Named model routes',
        description:
          'Routes from EASEL_ROUTES_FILE. Submit with `model` set to a route name (and no `provider`) to run on its first target that can take the request, falling through to the next on provider-side failure.',
        tags: ['providers'],
        response: {
          200: Type.Object({
            data: Type.Array(
              Type.Object({
                name: Type.String(),
                description: Type.Union([Type.String(), Type.Null()]),
                fallback_after_seconds: Type.Number({
                  description: 'How long a queued task waits on a target without usable credentials before moving on.',
                }),
                targets: Type.Array(RouteTargetSchema),
              }),
            ),
          }),
        },
      },
    },
    async () => ({
      data: router.list().map((route) => ({
        name: route.name,
        description: route.description,
        fallback_after_seconds: route.fallbackAfterMs / 1000,
        targets: route.targets,
      })),
    }),
  );
};
