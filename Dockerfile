# streamrec's roles (ingest, trainer, serve) as one image; docker-compose.yml runs each as a service.
#   docker build -t streamrec .
#   docker run --rm streamrec --help
FROM node:20-bookworm-slim
WORKDIR /app
# hnswlib-node has no prebuilt binaries: node-gyp compiles it (and the AVX2 copy that
# scripts/build-hnswlib-avx2.js makes; the CPU is checked again where the container runs).
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
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
