# streamrec's roles (ingest, trainer, serve) as one image; docker-compose.yml runs each as a service.
#   docker build -t streamrec .
#   docker run --rm streamrec --help
FROM node:20-bookworm-slim
WORKDIR /app
COPY . .
# `npm ci` also builds dist/ (prepare) and sets up the native TensorFlow.js backend where it can (postinstall).
RUN npm ci && npm cache clean --force
ENV NODE_ENV=production \
    TF_CPP_MIN_LOG_LEVEL=2 \
    STREAMREC__ARTIFACTS__DIR=/data/artifacts \
    STREAMREC__ARTIFACTS__REGISTRY_FILE=/data/artifacts/item-registry.json \
    STREAMREC__MODEL_REGISTRY__URL=dir:/data/model-registry
VOLUME ["/data"]
ENTRYPOINT ["node", "bin/streamrec.js"]
CMD ["--help"]
