# One image for every drydock command: the registry (`serve`, the default), the
# Kubernetes operator (`operator`), garbage collection (`gc`) and `migrate`; the
# manifests pick the command with `args`.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev

FROM node:20-slim
ENV NODE_ENV=production DRYDOCK_DATA_DIR=/var/lib/drydock
WORKDIR /app
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Migrations are read from src/metadata/migrations at run time.
COPY --from=build /app/src/metadata/migrations ./src/metadata/migrations
COPY package.json ./
RUN mkdir -p /var/lib/drydock && chown node:node /var/lib/drydock
# Numeric (node = 1000): the kubelet can only verify runAsNonRoot on a UID.
USER 1000:1000
EXPOSE 5000
ENTRYPOINT ["node", "dist/cli.js"]
CMD ["serve"]
