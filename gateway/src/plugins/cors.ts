// CORS for the frontend origins in CORS_ORIGINS (@fastify/cors): credentials allowed, preflights answered
// by the gateway and never forwarded.
import fp from 'fastify-plugin'
import fastifyCors from '@fastify/cors'

export const cors = fp<{ origins: string[] }>(async function cors (app, opts) {
  await app.register(fastifyCors, {
    origin: opts.origins.length > 0 ? opts.origins : false,
    credentials: true,
    methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowedHeaders: ['Authorization', 'Content-Type', 'X-Request-Id'],
    exposedHeaders: ['Location', 'Link', 'X-Request-Id', 'WWW-Authenticate'],
    maxAge: 600
  })
}, { name: 'gateway-cors', fastify: '5.x' })
